#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// One frame of a multiplexed stream: docker's attach framing (an 8-byte header `[stream, 0, 0, 0,
/// size as big-endian UInt32]`, then `size` bytes), with three control kinds added for the conversation
/// between a container's monitor and the clients attached to it. Docker's own three kinds keep their
/// numbers, so an engine can forward output frames to a Docker API client unchanged.
public struct StreamFrame: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case stdin = 0
        case stdout = 1
        case stderr = 2
        /// Client → monitor: the terminal's new size, `rows` and `columns` as two big-endian UInt16.
        case resize = 3
        /// Client → monitor: no more input (close the container's stdin).
        case closeStdin = 4
        /// Monitor → client: the container exited; the payload is its status as a big-endian Int32.
        case exit = 5
        /// Client → monitor: send nothing that happened before this (only what follows).
        case ready = 6
        /// Monitor → client, after `exit`: the runtime has deleted the container (its cgroup and state
        /// are gone), so a client removing the container can finish.
        case released = 7
        /// Client → monitor: close the log file and open it again (the kubelet renamed it to rotate it:
        /// the CRI's ReopenContainerLog). The monitor answers with the same kind, its payload empty when
        /// the file was reopened, else the error.
        case reopenLog = 8
    }

    public var kind: Kind
    public var payload: [UInt8]

    public init(_ kind: Kind, _ payload: [UInt8] = []) {
        self.kind = kind
        self.payload = payload
    }

    public static let headerSize = 8
    /// Frames larger than this are refused (a corrupt or hostile peer cannot make us allocate more).
    public static let maximumPayload = 1 << 20

    /// Appends a frame of `kind` holding `payload` to `buffer`, without building a frame first (a
    /// 100 MB log goes out as a million of them).
    public static func append<C: Collection>(_ kind: Kind, _ payload: C, to buffer: inout [UInt8])
    where C.Element == UInt8 {
        let n = UInt32(payload.count)
        buffer.append(contentsOf: [
            kind.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff),
        ])
        buffer.append(contentsOf: payload)
    }

    public var encoded: [UInt8] {
        let n = UInt32(payload.count)
        return [
            kind.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff),
        ] + payload
    }

    public static func exit(_ status: Int32) -> StreamFrame {
        let v = UInt32(bitPattern: status)
        return StreamFrame(.exit, [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
    }

    public static func resize(rows: UInt16, columns: UInt16) -> StreamFrame {
        StreamFrame(.resize, [UInt8(rows >> 8), UInt8(rows & 0xff), UInt8(columns >> 8), UInt8(columns & 0xff)])
    }

    /// The exit status of an `.exit` frame.
    public var exitStatus: Int32? {
        guard kind == .exit, payload.count == 4 else { return nil }
        return Int32(
            bitPattern: UInt32(payload[0]) << 24 | UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8
                | UInt32(payload[3]))
    }

    /// Rows and columns of a `.resize` frame.
    public var size: (rows: UInt16, columns: UInt16)? {
        guard kind == .resize, payload.count == 4 else { return nil }
        return (UInt16(payload[0]) << 8 | UInt16(payload[1]), UInt16(payload[2]) << 8 | UInt16(payload[3]))
    }
}

/// Splits a byte stream into frames as it arrives.
public struct StreamFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    public init() {}

    public enum Failure: Error, Equatable { case unknownKind(UInt8), tooLarge(Int) }

    public mutating func append(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next complete frame, or nil until more bytes arrive.
    public mutating func next() throws(Failure) -> StreamFrame? {
        guard buffer.count >= StreamFrame.headerSize else { return nil }
        guard let kind = StreamFrame.Kind(rawValue: buffer[0]) else { throw .unknownKind(buffer[0]) }
        let size = Int(buffer[4]) << 24 | Int(buffer[5]) << 16 | Int(buffer[6]) << 8 | Int(buffer[7])
        guard size <= StreamFrame.maximumPayload else { throw .tooLarge(size) }
        guard buffer.count >= StreamFrame.headerSize + size else { return nil }
        let frame = StreamFrame(kind, Array(buffer[StreamFrame.headerSize..<(StreamFrame.headerSize + size)]))
        buffer.removeFirst(StreamFrame.headerSize + size)
        return frame
    }
}

/// Unix stream sockets by path (the monitor's attach socket, console sockets).
public enum UnixSocket {
    /// A listening socket at `path` (an existing file there is replaced), close-on-exec.
    public static func listen(_ path: String, backlog: Int32 = 16) throws(SystemCallError) -> FileDescriptor {
        let fd = FileDescriptor(
            owning: try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        )
        unlink(path)
        var address = try socketAddress(path)
        _ = try sys("bind", path) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        _ = try sys("listen", path) { Glibc.listen(fd.rawValue, backlog) }
        return fd
    }

    /// A connection to the socket at `path`, close-on-exec.
    public static func connect(_ path: String) throws(SystemCallError) -> FileDescriptor {
        let fd = FileDescriptor(
            owning: try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        )
        var address = try socketAddress(path)
        _ = try sys("connect", path) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        return fd
    }

    /// Accepts one connection (close-on-exec).
    public static func accept(_ listener: FileDescriptor) throws(SystemCallError) -> FileDescriptor {
        FileDescriptor(owning: try sys("accept4") { berth_accept_cloexec(listener.rawValue, 0) })
    }

    static func socketAddress(_ path: String) throws(SystemCallError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // sun_path is 108 bytes including the NUL: longer paths need a shorter route (a /proc/self/fd link).
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemCallError(call: "bind", errno: ENAMETOOLONG, subject: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return address
    }
}
