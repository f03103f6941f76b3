#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Layer files outside the store.
public enum LayerFiles {
    /// Applies a layer tar (plain, gzip or zstd, detected) to `directory`, whiteouts deleting what they
    /// name, every path resolved inside `directory`. Returns the layer's DiffID.
    @discardableResult
    public static func apply(
        _ file: String, to directory: String, options: UnpackOptions = UnpackOptions(whiteouts: .apply)
    ) throws -> Digest {
        try FileSystem.makeDirectories(directory)
        let input = try FileDescriptor.open(file, O_RDONLY)
        let head = try input.read(upTo: 4)
        _ = lseek(input.rawValue, 0, SEEK_SET)
        let unpacker = LayerUnpacker(root: try Root(path: directory), options: options, layerName: file)
        let pipeline = LayerPipeline(compression: Compression.detect(head), unpacker: unpacker, threaded: true)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = Glibc.read(input.rawValue, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }; throw SystemCallError(call: "read", errno: errno, subject: file)
            }
            if n == 0 { break }
            try pipeline.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return try pipeline.finish().diffID
    }
}
