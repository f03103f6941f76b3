#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram such as `READY=1` to
/// the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). A unit
/// with `Type=notify` counts the daemon started only when it says so, so `systemctl start` returns
/// once its sockets accept connections.
public enum ServiceNotify {
    /// Sends `state` when the process runs under a `Type=notify` unit; does nothing otherwise.
    /// Returns whether a message was sent.
    @discardableResult
    public static func send(_ state: String, socketPath: String? = nil) -> Bool {
        guard let path = socketPath ?? getenv("NOTIFY_SOCKET").map({ String(cString: $0) }), !path.isEmpty else {
            return false
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // `@name`: the abstract namespace, a leading NUL and no terminator counted.
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, message, message.count, Int32(MSG_NOSIGNAL), $0, length)
            }
        }
        return sent == message.count
    }
}
