// libzstd from Debian (libzstd-dev): streamed zstd decompression for image layers.
#include <zstd.h>
