#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// --console-socket: the runtime connects to the caller's unix socket; the init creates the container's
/// pty and sends the master over that connection with SCM_RIGHTS.
enum ConsoleSocket {
    static func connect(_ path: String) throws(RuntimeError) -> FileDescriptor {
        let fd = try RuntimeError.wrap("console socket \(path)") { () throws(SystemCallError) in
            try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        }
        let owned = FileDescriptor(owning: fd)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .other("console socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                Glibc.connect(fd, socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            throw .system(SystemCallError(call: "connect", errno: errno, subject: path), context: "console socket")
        }
        return owned
    }
}
