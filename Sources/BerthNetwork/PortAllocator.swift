#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Host ports of published container ports. The `portmap` plugin only adds DNAT rules, and nothing
/// listens on the host port, so two containers could silently publish the same port and a host process
/// could shadow (or be shadowed by) a container. Docker's port allocator prevents both; so does this:
/// a host port must be bindable on the host right now and not reserved for another container, and a
/// port picked for `-p 80` / `-P` is found by binding port 0, as docker does, then kept for the container.
public struct PortAllocator: Sendable {
    /// Holds `ports.json` (the reservations) and its lock.
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// A host port held by a container.
    public struct Reservation: Codable, Sendable, Equatable {
        public var containerID: String
        public var hostIP: String
        public var hostPort: UInt16
        public var proto: String

        /// Two reservations collide when protocol and port match and one of the addresses covers the other.
        func collides(hostIP otherIP: String, hostPort otherPort: UInt16, proto otherProto: String) -> Bool {
            proto == otherProto && hostPort == otherPort && (hostIP == otherIP || hostIP.isEmpty || otherIP.isEmpty)
        }
    }

    var statePath: String { "\(directory)/ports.json" }
    var lockPath: String { "\(directory)/ports.lock" }

    /// Every current reservation.
    public func reservations() -> [Reservation] {
        guard let bytes = try? FileSystem.readFile(statePath) else { return [] }
        return (try? JSONCoding.decode([Reservation].self, from: bytes)) ?? []
    }

    /// Resolves `mappings` for `containerID`: host port 0 gets a free port, a host range gets its first
    /// free port, a given port is checked. Reservations of the same container are replaced (a restart
    /// keeps the ports it was given when the engine passes the resolved mappings back).
    public func allocate(_ mappings: [PortMapping], containerID: String) throws(NetworkError) -> [PortMapping] {
        try FileLock.withLock(lockPath) { () throws(NetworkError) -> [PortMapping] in
            var others = reservations().filter { $0.containerID != containerID }
            var resolved: [PortMapping] = []
            for mapping in mappings {
                var chosen = mapping
                if mapping.hostPort == 0 {
                    chosen.hostPort = try pickFreePort(hostIP: mapping.hostIP, proto: mapping.proto, avoiding: others)
                } else {
                    var found: UInt16?
                    for port in mapping.hostPort...mapping.hostPortEnd {
                        if others.contains(where: {
                            $0.collides(hostIP: mapping.hostIP, hostPort: port, proto: mapping.proto)
                        }) {
                            continue
                        }
                        if try Self.isBindable(hostIP: mapping.hostIP, port: port, proto: mapping.proto) {
                            found = port
                            break
                        }
                    }
                    guard let found else {
                        throw .portAllocated(hostIP: mapping.hostIP, hostPort: mapping.hostPort, proto: mapping.proto)
                    }
                    chosen.hostPort = found
                }
                chosen.hostPortEnd = chosen.hostPort
                // Two mappings of one request may not share a host port either.
                others.append(
                    Reservation(
                        containerID: containerID, hostIP: chosen.hostIP, hostPort: chosen.hostPort, proto: chosen.proto)
                )
                resolved.append(chosen)
            }
            try save(others)
            return resolved
        }
    }

    /// Drops every reservation of `containerID`.
    public func release(containerID: String) throws(NetworkError) {
        try FileLock.withLock(lockPath) { () throws(NetworkError) in
            let all = reservations()
            let kept = all.filter { $0.containerID != containerID }
            if kept.count != all.count { try save(kept) }
        }
    }

    func save(_ reservations: [Reservation]) throws(NetworkError) {
        do {
            let bytes = try JSONCoding.encode(reservations, pretty: true)
            try FileSystem.writeAtomically(statePath, bytes, mode: 0o600)
        } catch let error as SystemCallError {
            throw .system(error)
        } catch {
            throw .invalidConfiguration(source: statePath, reason: "cannot encode: \(error)")
        }
    }

    func pickFreePort(hostIP: String, proto: String, avoiding others: [Reservation]) throws(NetworkError) -> UInt16 {
        // The kernel's choice for port 0 is free now; a reserved one is possible (nothing binds a
        // published port), so ask again a few times.
        for _ in 0..<64 {
            let port = try Self.bindPortZero(hostIP: hostIP, proto: proto)
            if !others.contains(where: { $0.collides(hostIP: hostIP, hostPort: port, proto: proto) }) { return port }
        }
        throw .portAllocated(hostIP: hostIP, hostPort: 0, proto: proto)
    }

    // MARK: Probing the host

    /// Whether `hostIP:port` can be bound now (false: EADDRINUSE). Other failures (an address that is not
    /// the host's) are thrown. SCTP, when the kernel lacks it, counts as free.
    public static func isBindable(hostIP: String, port: UInt16, proto: String) throws(NetworkError) -> Bool {
        do {
            _ = try bind(hostIP: hostIP, port: port, proto: proto)
            return true
        } catch let error where error.errno == EADDRINUSE {
            return false
        } catch let error where error.errno == EPROTONOSUPPORT && proto == "sctp" {
            return true
        } catch {
            throw .system(error)
        }
    }

    static func bindPortZero(hostIP: String, proto: String) throws(NetworkError) -> UInt16 {
        do { return try bind(hostIP: hostIP, port: 0, proto: proto) } catch { throw .system(error) }
    }

    /// Binds a socket to the address and returns the bound port; the socket is closed right after.
    static func bind(hostIP: String, port: UInt16, proto: String) throws(SystemCallError) -> UInt16 {
        let v6 = hostIP.contains(":")
        let family = v6 ? AF_INET6 : AF_INET
        let type: Int32 = proto == "udp" ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let protocolNumber: Int32 = proto == "sctp" ? Int32(IPPROTO_SCTP) : 0
        let subject = "\(v6 ? "[\(hostIP)]" : (hostIP.isEmpty ? "0.0.0.0" : hostIP)):\(port)/\(proto)"
        let fd = FileDescriptor(
            owning: try sys("socket", subject) { socket(family, type | Int32(SOCK_CLOEXEC.rawValue), protocolNumber) })
        var one: Int32 = 1
        // As docker-proxy (Go's net.Listen): connections in TIME_WAIT do not make a port "taken".
        if type == Int32(SOCK_STREAM.rawValue) {
            _ = setsockopt(fd.rawValue, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, hostIP, &address.sin6_addr) == 1 else {
                throw SystemCallError(call: "inet_pton", errno: EINVAL, subject: hostIP)
            }
            _ = try sys("bind", subject) {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.bind(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
            var bound = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = try sys("getsockname", subject) {
                withUnsafeMutablePointer(to: &bound) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        getsockname(fd.rawValue, $0, &length)
                    }
                }
            }
            return UInt16(bigEndian: bound.sin6_port)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        if !hostIP.isEmpty {
            guard inet_pton(AF_INET, hostIP, &address.sin_addr) == 1 else {
                throw SystemCallError(call: "inet_pton", errno: EINVAL, subject: hostIP)
            }
        }
        _ = try sys("bind", subject) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = try sys("getsockname", subject) {
            withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getsockname(fd.rawValue, $0, &length)
                }
            }
        }
        return UInt16(bigEndian: bound.sin_port)
    }
}
