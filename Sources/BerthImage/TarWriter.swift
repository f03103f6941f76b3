#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// A minimal tar writer (ustar, PAX records for long names): enough for image archives.
final class TarWriter {
    private let write: ([UInt8]) throws -> Void
    private var owner: (uid: Int, gid: Int, mtime: Int) = (0, 0, 0)

    init(write: @escaping ([UInt8]) throws -> Void) { self.write = write }

    func addDirectory(_ path: String, mode: UInt32 = 0o755) throws {
        try header(path: path.hasSuffix("/") ? path : path + "/", size: 0, type: UInt8(ascii: "5"), mode: mode)
    }

    func addFile(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644) throws {
        try header(path: path, size: Int64(bytes.count), type: UInt8(ascii: "0"), mode: mode)
        try write(bytes)
        try pad(Int64(bytes.count))
    }

    /// Streams a file from disk into the archive.
    func addFile(_ path: String, from source: String, mode: UInt32 = 0o644) throws {
        let fd = try FileDescriptor.open(source, O_RDONLY)
        var info = stat()
        _ = fstat(fd.rawValue, &info)
        try header(path: path, size: Int64(info.st_size), type: UInt8(ascii: "0"), mode: mode)
        while true {
            let chunk = try fd.read(upTo: 1 << 20)
            if chunk.isEmpty { break }
            try write(chunk)
        }
        try pad(Int64(info.st_size))
    }

    /// Any entry type ('0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' dir, '6' fifo).
    func addEntry(
        _ path: String, type: Character, link: String = "", bytes: [UInt8] = [], mode: UInt32 = 0o644,
        major: Int64 = 0, minor: Int64 = 0, uid: Int = 0, gid: Int = 0, mtime: Int = 0
    ) throws {
        owner = (uid, gid, mtime)
        defer { owner = (0, 0, 0) }
        if link.utf8.count > 100 {
            let record = paxRecord("linkpath", link)
            try rawHeader(name: "././@PaxHeader", size: Int64(record.count), type: UInt8(ascii: "x"), mode: 0o644)
            try write(record)
            try pad(Int64(record.count))
        }
        try header(
            path: path, size: Int64(bytes.count), type: type.asciiValue!, mode: mode, link: link, major: major,
            minor: minor)
        if !bytes.isEmpty {
            try write(bytes)
            try pad(Int64(bytes.count))
        }
    }

    /// A regular file streamed from an open descriptor, with its metadata.
    func addFile(_ path: String, fd: Int32, size: Int64, mode: UInt32, uid: Int, gid: Int, mtime: Int) throws {
        owner = (uid, gid, mtime)
        defer { owner = (0, 0, 0) }
        try header(path: path, size: size, type: UInt8(ascii: "0"), mode: mode)
        var remaining = size
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, Int(remaining))) }
            if n < 0 {
                if errno == EINTR { continue }; throw SystemCallError(call: "read", errno: errno, subject: path)
            }
            if n == 0 { throw SystemCallError(call: "read", errno: EIO, subject: "\(path) shrank while archiving") }
            try write(Array(buffer[0..<n]))
            remaining -= Int64(n)
        }
        try pad(size)
    }

    func finish() throws { try write([UInt8](repeating: 0, count: 1024)) }

    private func pad(_ size: Int64) throws {
        let padding = Int((512 - size % 512) % 512)
        if padding > 0 { try write([UInt8](repeating: 0, count: padding)) }
    }

    private func header(
        path: String, size: Int64, type: UInt8, mode: UInt32, link: String = "", major: Int64 = 0, minor: Int64 = 0
    ) throws {
        if path.utf8.count > 100 {
            let record = paxRecord("path", path)
            try rawHeader(name: "././@PaxHeader", size: Int64(record.count), type: UInt8(ascii: "x"), mode: 0o644)
            try write(record)
            try pad(Int64(record.count))
        }
        try rawHeader(
            name: String(decoding: path.utf8.prefix(100), as: UTF8.self), size: size, type: type, mode: mode,
            link: link, major: major, minor: minor)
    }

    private func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length += 1 }
        return Array("\(length)\(body)".utf8)
    }

    private func rawHeader(
        name: String, size: Int64, type: UInt8, mode: UInt32, link: String = "", major: Int64 = 0, minor: Int64 = 0
    ) throws {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ offset: Int, _ bytes: [UInt8]) { for (i, b) in bytes.enumerated() { h[offset + i] = b } }
        func octal(_ offset: Int, _ length: Int, _ value: Int64) {
            let digits = String(value, radix: 8).leftPadded(length - 1)
            put(offset, Array(digits.utf8))
        }
        put(0, Array(name.utf8.prefix(100)))
        octal(100, 8, Int64(mode))
        octal(108, 8, Int64(owner.uid))
        octal(116, 8, Int64(owner.gid))
        octal(124, 12, size)
        octal(136, 12, Int64(owner.mtime))
        h[156] = type
        put(157, Array(link.utf8.prefix(100)))
        octal(329, 8, major)
        octal(337, 8, minor)
        put(257, Array("ustar\u{0}00".utf8))
        put(148, Array("        ".utf8))
        let sum = h.reduce(0) { $0 + Int($1) }
        put(148, Array(String(sum, radix: 8).leftPadded(6).utf8) + [0, 32])
        try write(h)
    }
}
