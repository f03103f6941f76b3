#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Testing

/// sd_notify's datagram, received as systemd receives it: on a path and in the abstract namespace.
@Suite struct ServiceNotifyTests {
    /// A datagram socket bound at `name` (`@…` abstract), and the length its address needs.
    func receiver(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        #expect(bound == 0, "bind \(name): errno \(errno)")
        return fd
    }

    func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : ""
    }

    @Test func readinessReachesAPathSocket() {
        let path = "/tmp/berth-notify-\(getpid())"
        unlink(path)
        let fd = receiver(path)
        defer { close(fd); unlink(path) }
        #expect(ServiceNotify.send("READY=1\nSTATUS=up", socketPath: path))
        #expect(receive(fd) == "READY=1\nSTATUS=up")
    }

    @Test func readinessReachesAnAbstractSocket() {
        let name = "@berth-notify-test-\(getpid())"
        let fd = receiver(name)
        defer { close(fd) }
        #expect(ServiceNotify.send("READY=1", socketPath: name))
        #expect(receive(fd) == "READY=1")
    }

    @Test func withoutASocketNothingIsSent() {
        #expect(!ServiceNotify.send("READY=1", socketPath: ""))
        #expect(!ServiceNotify.send("READY=1", socketPath: "/nonexistent/berth-notify"))
    }
}
