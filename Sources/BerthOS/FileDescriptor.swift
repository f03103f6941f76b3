#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// An owned file descriptor: opened with O_CLOEXEC, closed exactly once when the owner lets go of it.
///
/// A class rather than a noncopyable struct so descriptors can live in collections and plans; ownership
/// is still single: `take()` hands the raw number over and disarms the close.
public final class FileDescriptor: @unchecked Sendable {
    public private(set) var rawValue: Int32

    public init(owning rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        if rawValue >= 0 { Glibc.close(rawValue) }
    }

    /// Gives up ownership; the caller must close the returned descriptor.
    public func take() -> Int32 {
        let fd = rawValue
        rawValue = -1
        return fd
    }

    public func close() {
        if rawValue >= 0 {
            Glibc.close(rawValue)
            rawValue = -1
        }
    }

    // MARK: Opening

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemCallError)
        -> FileDescriptor
    {
        let fd = try sys("open", path) { berth_open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(owning: fd)
    }

    public func openat(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemCallError) -> FileDescriptor {
        let fd = try sys("openat", path) { berth_openat(rawValue, path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(owning: fd)
    }

    // MARK: Reading and writing

    /// Writes all of `bytes`, retrying short writes.
    public func write(_ bytes: some Collection<UInt8>) throws(SystemCallError) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let written = array.withUnsafeBytes { raw in
                Glibc.write(rawValue, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "write", errno: errno)
            }
            offset += written
        }
    }

    /// `write` for a socket whose peer may be gone: EPIPE is an error, not a SIGPIPE that kills us.
    public func send(_ bytes: some Collection<UInt8>) throws(SystemCallError) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let sent = array.withUnsafeBytes { raw in
                Glibc.send(rawValue, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "send", errno: errno)
            }
            offset += sent
        }
    }

    public func write(_ string: String) throws(SystemCallError) {
        try write(Array(string.utf8))
    }

    /// Reads up to `count` bytes; an empty result means end of file.
    public func read(upTo count: Int) throws(SystemCallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = try readInto(&buffer)
        buffer.removeSubrange(n...)
        return buffer
    }

    /// Reads until end of file.
    public func readAll() throws(SystemCallError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try readInto(&chunk)
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }

    private func readInto(_ buffer: inout [UInt8]) throws(SystemCallError) -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in Glibc.read(rawValue, raw.baseAddress, raw.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw SystemCallError(call: "read", errno: errno) }
        }
    }

    /// Reads exactly `count` bytes, or fewer only at end of file.
    public func readExactly(_ count: Int) throws(SystemCallError) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            let part = try read(upTo: count - result.count)
            if part.isEmpty { break }
            result.append(contentsOf: part)
        }
        return result
    }

    public func setCloseOnExec(_ on: Bool) throws(SystemCallError) {
        let flags = try sys("fcntl(F_GETFD)") { berth_fcntl_int(rawValue, F_GETFD, 0) }
        let updated = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC
        _ = try sys("fcntl(F_SETFD)") { berth_fcntl_int(rawValue, F_SETFD, updated) }
    }

    /// The path of this descriptor in /proc, for calls that only take paths (mount through a verified fd).
    public var procPath: String { "/proc/self/fd/\(rawValue)" }
}

/// A pipe whose two ends are owned descriptors.
public struct Pipe: Sendable {
    public let reading: FileDescriptor
    public let writing: FileDescriptor

    public init() throws(SystemCallError) {
        var fds: [Int32] = [-1, -1]
        _ = try sys("pipe2") { berth_pipe2(&fds, O_CLOEXEC) }
        reading = FileDescriptor(owning: fds[0])
        writing = FileDescriptor(owning: fds[1])
    }
}

/// A connected pair of unix stream sockets.
public struct SocketPair: Sendable {
    public let first: FileDescriptor
    public let second: FileDescriptor

    public init() throws(SystemCallError) {
        var fds: [Int32] = [-1, -1]
        _ = try sys("socketpair") {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        first = FileDescriptor(owning: fds[0])
        second = FileDescriptor(owning: fds[1])
    }
}

/// Copies everything `source` has left to read into `target` (1 MiB at a time, short writes retried):
/// a blob or a hard link's target into a file, a stream on standard input into a spool file.
public func copyContents(from source: Int32, to target: Int32) throws(SystemCallError) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let n = Glibc.read(source, buffer.baseAddress, buffer.count)
        if n < 0 { if errno == EINTR { continue }; throw SystemCallError(call: "read", errno: errno) }
        if n == 0 { return }
        var offset = 0
        while offset < n {
            let w = Glibc.write(target, buffer.baseAddress! + offset, n - offset)
            if w < 0 { if errno == EINTR { continue }; throw SystemCallError(call: "write", errno: errno) }
            offset += w
        }
    }
}
