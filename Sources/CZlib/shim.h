// zlib from Debian (zlib1g-dev): streamed gzip inflate/deflate for image layers.
#include <zlib.h>
// inflateInit2/deflateInit2 are macros; Swift cannot import them.
static inline int berth_inflate_init(z_streamp strm) { return inflateInit2(strm, 15 + 32); }
static inline int berth_deflate_init(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
// The zlib format (not gzip) with the default window, for SPDY's header blocks, which start from a
// preset dictionary.
static inline int berth_zlib_inflate_init(z_streamp strm) { return inflateInit(strm); }
static inline int berth_zlib_deflate_init(z_streamp strm, int level) { return deflateInit(strm, level); }
