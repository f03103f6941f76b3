#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Testing
@testable import BerthNetwork

/// A TCP listener on 127.0.0.1, closed when released: on a kernel-chosen port, or on a given one.
final class Listener {
    let fd: FileDescriptor
    let port: UInt16

    /// A listener on a port below the kernel's ephemeral range (32768 and up here) whose next port is
    /// free too. Ephemeral ports are what every other test's clients and servers get, so one of them
    /// can take `port + 1` between the check and its use; ports below the range are handed out only
    /// when asked for by number.
    static func withAFreeNeighbour() throws -> Listener {
        for _ in 0..<200 {
            let candidate = UInt16.random(in: 20000..<32000)
            guard let listener = try? Listener(port: candidate) else { continue }
            if (try? PortAllocator.isBindable(hostIP: "127.0.0.1", port: candidate + 1, proto: "tcp")) == true {
                return listener
            }
        }
        throw NetworkError.invalidConfiguration(
            source: "test", reason: "no free pair of ports below 32000 on 127.0.0.1")
    }

    init(port requested: UInt16 = 0) throws {
        let socketFD = FileDescriptor(
            owning: socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        let raw = socketFD.rawValue
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
        address.sin_port = requested.bigEndian
        _ = try sys("bind") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(raw, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        _ = try sys("listen") { listen(raw, 4) }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = try sys("getsockname") {
            withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getsockname(raw, $0, &length)
                }
            }
        }
        fd = socketFD
        port = UInt16(bigEndian: bound.sin_port)
    }
}

@Suite struct PortAllocatorTests {
    @Test func portZeroIsResolvedToAFreePortThatIsThenKept() throws {
        let directory = temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let allocator = PortAllocator(directory: directory)
        let resolved = try allocator.allocate([PortMapping(hostIP: "127.0.0.1", containerPort: 80)], containerID: "c1")
        #expect(resolved.count == 1)
        let port = try #require(resolved.first?.hostPort)
        #expect(port != 0)
        #expect(try PortAllocator.isBindable(hostIP: "127.0.0.1", port: port, proto: "tcp"))
        #expect(
            allocator.reservations() == [.init(containerID: "c1", hostIP: "127.0.0.1", hostPort: port, proto: "tcp")])
        // Passing the resolved mapping back (a restart) keeps the port.
        #expect(try allocator.allocate(resolved, containerID: "c1") == resolved)
    }

    @Test func aPortAHostProcessListensOnIsAlreadyAllocated() throws {
        let directory = temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let listener = try Listener()
        #expect(try PortAllocator.isBindable(hostIP: "127.0.0.1", port: listener.port, proto: "tcp") == false)
        do {
            _ = try PortAllocator(directory: directory).allocate(
                [PortMapping(hostPort: listener.port, containerPort: 80)], containerID: "c1")
            Issue.record("expected port is already allocated")
        } catch {
            #expect(error.description == "Bind for 0.0.0.0:\(listener.port) failed: port is already allocated")
        }
        // UDP on the same number is another port.
        #expect(try PortAllocator.isBindable(hostIP: "127.0.0.1", port: listener.port, proto: "udp"))
        withExtendedLifetime(listener) {}
    }

    @Test func aPortAnotherContainerPublishesIsAlreadyAllocatedUntilReleased() throws {
        let directory = temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let allocator = PortAllocator(directory: directory)
        let first = try allocator.allocate([PortMapping(hostIP: "127.0.0.1", containerPort: 80)], containerID: "a")
        let port = first[0].hostPort
        // 0.0.0.0 covers 127.0.0.1, so the same port on every address collides too.
        for hostIP in ["127.0.0.1", ""] {
            #expect(throws: NetworkError.self) {
                try allocator.allocate(
                    [PortMapping(hostIP: hostIP, hostPort: port, containerPort: 81)], containerID: "b")
            }
        }
        try allocator.release(containerID: "a")
        #expect(allocator.reservations().isEmpty)
        #expect(
            try allocator.allocate([PortMapping(hostPort: port, containerPort: 81)], containerID: "b")[0].hostPort
                == port)
    }

    @Test func aHostRangeGivesItsFirstFreePort() throws {
        let directory = temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let listener = try Listener.withAFreeNeighbour()
        let allocator = PortAllocator(directory: directory)
        let resolved = try allocator.allocate(
            [
                PortMapping(
                    hostIP: "127.0.0.1", hostPort: listener.port, hostPortEnd: listener.port + 1, containerPort: 80)
            ],
            containerID: "c")
        #expect(resolved.map(\.hostPort) == [listener.port + 1])
        #expect(resolved.map(\.hostPortEnd) == [listener.port + 1])
        withExtendedLifetime(listener) {}
    }

    @Test func twoMappingsOfOneRequestNeverShareAHostPort() throws {
        let directory = temporaryDirectory()
        defer { try? FileSystem.removeTree(directory) }
        let allocator = PortAllocator(directory: directory)
        let resolved = try allocator.allocate(
            [PortMapping(containerPort: 80), PortMapping(containerPort: 81)], containerID: "c")
        #expect(Set(resolved.map(\.hostPort)).count == 2)
        #expect(throws: NetworkError.self) {
            try allocator.allocate(
                [PortMapping(hostPort: 18181, containerPort: 80), PortMapping(hostPort: 18181, containerPort: 81)],
                containerID: "d")
        }
    }

    @Test func anAddressThatIsNotTheHostsIsASystemError() {
        // 198.51.100.0/24 is TEST-NET-2, on no interface here: bind says EADDRNOTAVAIL.
        #expect(throws: NetworkError.self) {
            try PortAllocator.isBindable(hostIP: "198.51.100.77", port: 8080, proto: "tcp")
        }
    }
}
