import CZlib
import CZstd

/// A streaming decompressor: feed compressed bytes, get decompressed bytes through `sink`.
protocol Decompressor: AnyObject {
    func feed(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Checks that the stream ended cleanly (a truncated stream is an error).
    func finish() throws
}

enum DecompressError: Error, CustomStringConvertible {
    case gzip(String)
    case zstd(String)
    case truncated(String)
    var description: String {
        switch self {
        case .gzip(let m): return "gzip: \(m)"
        case .zstd(let m): return "zstd: \(m)"
        case .truncated(let m): return "\(m) stream ended early (truncated layer)"
        }
    }
}

func makeDecompressor(_ compression: Compression) -> any Decompressor {
    switch compression {
    case .none: return PassThrough()
    case .gzip: return GzipDecompressor()
    case .zstd: return ZstdDecompressor()
    }
}

final class PassThrough: Decompressor {
    func feed(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if input.count > 0 { try sink(input) }
    }
    func finish() throws {}
}

/// zlib inflate with gzip auto-detection; concatenated gzip members (pigz, multi-member) are followed.
final class GzipDecompressor: Decompressor {
    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer
    private var ended = false
    private var started = false

    init() {
        output = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
        _ = berth_inflate_init(&stream)
    }

    deinit {
        inflateEnd(&stream)
        output.deallocate()
    }

    func feed(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, input.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while true {
            if ended {
                // Another gzip member follows, or trailing zero padding (tolerated).
                if stream.avail_in == 0 { return }
                if stream.next_in.pointee == 0 {
                    let rest = UnsafeRawBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                    if rest.allSatisfy({ $0 == 0 }) { stream.avail_in = 0; return }
                }
                inflateReset(&stream)
                ended = false
            }
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let rc = inflate(&stream, Z_NO_FLUSH)
            started = true
            let produced = output.count - Int(stream.avail_out)
            if produced > 0 { try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: produced)) }
            switch rc {
            case Z_STREAM_END:
                ended = true
            case Z_OK:
                if stream.avail_in == 0 && stream.avail_out != 0 { return }
            case Z_BUF_ERROR:
                if stream.avail_in == 0 { return }
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw DecompressError.gzip(message)
            }
        }
    }

    func finish() throws {
        if !ended { throw DecompressError.truncated("gzip") }
    }
}

/// libzstd streaming decompression.
final class ZstdDecompressor: Decompressor {
    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    private var frameOpen = false

    init() {
        context = ZSTD_createDStream()
        ZSTD_initDStream(context)
        output = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamOutSize(), alignment: 16)
    }

    deinit {
        ZSTD_freeDStream(context)
        output.deallocate()
    }

    func feed(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, input.count > 0 else { return }
        var inBuffer = ZSTD_inBuffer(src: base, size: input.count, pos: 0)
        while true {
            var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            let rc = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(rc) != 0 { throw DecompressError.zstd(String(cString: ZSTD_getErrorName(rc))) }
            frameOpen = rc != 0
            if outBuffer.pos > 0 { try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: outBuffer.pos)) }
            if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size { return }
        }
    }

    func finish() throws {
        if frameOpen { throw DecompressError.truncated("zstd") }
    }
}

/// Streaming gzip compression (for `berth image import` of plain tars and test images).
final class GzipCompressor {
    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer

    init(level: Int32 = 6) {
        output = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
        _ = berth_deflate_init(&stream, level)
    }

    deinit {
        deflateEnd(&stream)
        output.deallocate()
    }

    func feed(_ input: UnsafeRawBufferPointer, finish: Bool = false, _ sink: (UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        stream.next_in = input.baseAddress.map {
            UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
        }
        stream.avail_in = uInt(input.count)
        while true {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let rc = deflate(&stream, finish ? Z_FINISH : Z_NO_FLUSH)
            let produced = output.count - Int(stream.avail_out)
            if produced > 0 { try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: produced)) }
            if rc == Z_STREAM_END { return }
            if rc != Z_OK && rc != Z_BUF_ERROR { throw DecompressError.gzip("deflate error \(rc)") }
            if !finish && stream.avail_in == 0 && stream.avail_out != 0 { return }
        }
    }
}
