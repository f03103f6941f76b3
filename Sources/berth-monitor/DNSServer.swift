#if canImport(Glibc)
import Glibc
#endif
import BerthDNS
import BerthOS
import CBerthShim

/// Docker's embedded DNS server for a container on a user-defined network, run by its monitor: UDP and
/// TCP sockets on 127.0.0.11:53 made inside the container's pinned network namespace (so no iptables
/// rule and no extra process), served from the monitor's poll loop. Names of containers are answered
/// from the engine's records (BerthDNS.EmbeddedResolver); everything else is forwarded from the
/// host's namespace, where the monitor lives, so a host-loopback upstream (127.0.0.53) works as it
/// does for dockerd. Forwarding never blocks the loop: each query in flight has its own socket and a
/// deadline; when every upstream failed or timed out the client gets SERVFAIL, as from docker.
final class DNSServer {
    struct Settings {
        var networkNamespace: String
        /// `<root>/containers`: where the records are.
        var containers: String
        /// IPv4 servers, tried in order.
        var upstreams: [String]
        /// This container's ID (whose networks decide what is visible).
        var id: String
    }

    /// How long one upstream has to answer before the next is tried (docker's extIOTimeout is 4 s; the
    /// client's own resolver usually gives up after 5, so two servers get a chance).
    static let upstreamTimeout = 2.0
    /// Queries in flight and TCP clients at once; beyond that new ones are refused (docker caps too).
    static let maximumPending = 256
    static let maximumTCPClients = 64
    static let tcpIdleTimeout = 10.0

    /// Where an answer goes back to.
    enum Client {
        case udp(sockaddr_in)
        case tcp(TCPClient)
    }

    final class TCPClient {
        let fd: FileDescriptor
        var incoming: [UInt8] = []
        var outgoing: [UInt8] = []
        var lastActive = Timestamp.monotonic()
        var closed = false
        init(fd: FileDescriptor) { self.fd = fd }
    }

    /// One query sent upstream, over UDP (connected socket) or TCP (length-prefixed, RFC 7766).
    final class Forward {
        let query: [UInt8]
        let client: Client
        let overTCP: Bool
        var server: Int
        var socket: FileDescriptor?
        var deadline = 0.0
        var outgoing: [UInt8] = []
        var incoming: [UInt8] = []
        init(query: [UInt8], client: Client, overTCP: Bool, server: Int) {
            self.query = query
            self.client = client
            self.overTCP = overTCP
            self.server = server
        }
    }

    let settings: Settings
    let udp: FileDescriptor
    let tcp: FileDescriptor
    let directory: ResolverDirectory
    let upstreams: [sockaddr_in]
    var forwards: [Forward] = []
    var tcpClients: [TCPClient] = []
    /// One receive buffer for every read (a 64 KiB array per packet would leave the heap dirty).
    var buffer = [UInt8](repeating: 0, count: 65536)

    init(settings: Settings) throws {
        self.settings = settings
        self.directory = ResolverDirectory(containers: settings.containers)
        let address = IPv4Address(EmbeddedResolver.address)!.value
        udp = try DNSServer.bind(settings.networkNamespace, type: Int32(SOCK_DGRAM.rawValue), address: address)
        tcp = try DNSServer.bind(settings.networkNamespace, type: Int32(SOCK_STREAM.rawValue), address: address)
        upstreams = settings.upstreams.compactMap {
            IPv4Address($0).map { DNSServer.socketAddress($0.value, port: 53) }
        }
    }

    static func bind(_ namespace: String, type: Int32, address: UInt32) throws(SystemCallError) -> FileDescriptor {
        var step: Int32 = 0
        let result = berth_socket_in_netns(namespace, type, address, 53, &step)
        guard result >= 0 else {
            let call: String
            switch Int(step) {
            case Int(BERTH_NETNS_STEP_SETNS): call = "setns(CLONE_NEWNET)"
            case Int(BERTH_NETNS_STEP_SOCKET): call = "socket"
            case Int(BERTH_NETNS_STEP_BIND):
                call = type == Int32(SOCK_STREAM.rawValue) ? "bind/listen 127.0.0.11:53/tcp" : "bind 127.0.0.11:53/udp"
            default: call = "open"
            }
            throw SystemCallError(call: call, errno: -result, subject: namespace)
        }
        return FileDescriptor(owning: result)
    }

    static func socketAddress(_ address: UInt32, port: UInt16) -> sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.bigEndian
        return sa
    }

    // MARK: The poll loop's side

    /// What to watch: both listening sockets, every TCP client, every query in flight.
    var pollEntries: [pollfd] {
        var entries = [
            pollfd(fd: udp.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: tcp.rawValue, events: Int16(POLLIN), revents: 0),
        ]
        for client in tcpClients {
            entries.append(
                pollfd(
                    fd: client.fd.rawValue, events: Int16(POLLIN) | (client.outgoing.isEmpty ? 0 : Int16(POLLOUT)),
                    revents: 0))
        }
        for forward in forwards {
            guard let socket = forward.socket else { continue }
            entries.append(
                pollfd(
                    fd: socket.rawValue, events: forward.outgoing.isEmpty ? Int16(POLLIN) : Int16(POLLOUT), revents: 0))
        }
        return entries
    }

    /// Milliseconds until the next deadline (-1: none).
    var timeout: Int32 {
        var next = Double.infinity
        for forward in forwards { next = min(next, forward.deadline) }
        for client in tcpClients { next = min(next, client.lastActive + DNSServer.tcpIdleTimeout) }
        guard next.isFinite else { return -1 }
        return Int32(max(0, min(60_000, (next - Timestamp.monotonic()) * 1000 + 1)))
    }

    /// Handles whatever is ready among `entries` (the poll's whole array: other descriptors are skipped),
    /// then the deadlines that have passed.
    func step(_ entries: [pollfd]) {
        var ready: [Int32: Int16] = [:]
        for entry in entries where entry.revents != 0 { ready[entry.fd] = entry.revents }
        if ready[udp.rawValue] != nil { receiveUDP() }
        if ready[tcp.rawValue] != nil { acceptTCP() }
        for client in tcpClients {
            guard let events = ready[client.fd.rawValue] else { continue }
            if events & Int16(POLLOUT) != 0 { flush(client) }
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 { readTCP(client) }
        }
        for forward in forwards {
            guard let socket = forward.socket, let events = ready[socket.rawValue] else { continue }
            progress(forward, events: events)
        }
        let now = Timestamp.monotonic()
        for forward in forwards where forward.socket != nil && now >= forward.deadline { next(forward) }
        for client in tcpClients where now - client.lastActive >= DNSServer.tcpIdleTimeout { close(client) }
        forwards.removeAll { $0.socket == nil }
        tcpClients.removeAll { $0.closed }
    }

    // MARK: Queries in

    private func receiveUDP() {
        // A bounded batch per wake-up, so a flood cannot starve the container's output.
        for _ in 0..<64 {
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(udp.rawValue, raw.baseAddress, raw.count, 0, $0, &length)
                    }
                }
            }
            if n < 0 { return }
            handle(Array(buffer[0..<n]), from: .udp(from))
        }
    }

    private func acceptTCP() {
        while true {
            let fd = berth_accept_cloexec(tcp.rawValue, O_NONBLOCK)
            if fd < 0 { return }
            let client = TCPClient(fd: FileDescriptor(owning: fd))
            guard tcpClients.count < DNSServer.maximumTCPClients else { client.fd.close(); continue }
            tcpClients.append(client)
        }
    }

    private func readTCP(_ client: TCPClient) {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(client.fd.rawValue, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
        guard n > 0 else { close(client); return }
        client.lastActive = Timestamp.monotonic()
        client.incoming += buffer[0..<n]
        // Each message is a 2-byte length and that many bytes; several may come in one segment.
        while client.incoming.count >= 2 {
            let length = Int(client.incoming[0]) << 8 | Int(client.incoming[1])
            guard client.incoming.count >= 2 + length else { break }
            let message = Array(client.incoming[2..<(2 + length)])
            client.incoming.removeFirst(2 + length)
            handle(message, from: .tcp(client))
        }
    }

    /// Answers a query from the records, or forwards it.
    func handle(_ packet: [UInt8], from client: Client) {
        let query: DNSMessage.Query
        do { query = try DNSMessage.parseQuery(packet) } catch {
            if let reply = DNSMessage.headerOnlyResponse(to: packet, code: .formatError) { send(reply, to: client) }
            return
        }
        let peers = directory.peers()
        var asker =
            peers.first { $0.id == settings.id }
            ?? ResolverPeer(id: settings.id, name: "", running: true, endpoints: [])
        // The asker is running by definition (its record says so only once the engine saved the start).
        asker.running = true
        let others = peers.map { $0.id == settings.id ? asker : $0 }
        switch EmbeddedResolver.resolve(query, asker: asker, peers: others) {
        case .answer(let answers):
            send(
                DNSMessage.response(
                    to: query, code: .noError, answers: answers, ttl: EmbeddedResolver.ttl, authoritative: true),
                to: client)
        case .forward:
            guard !upstreams.isEmpty, forwards.count < DNSServer.maximumPending else {
                send(DNSMessage.response(to: query, code: .serverFailure), to: client)
                return
            }
            let overTCP: Bool
            if case .tcp = client { overTCP = true } else { overTCP = false }
            let forward = Forward(query: packet, client: client, overTCP: overTCP, server: -1)
            forwards.append(forward)
            next(forward)
        }
    }

    // MARK: Upstream

    /// Sends `forward` to the next upstream server, or answers SERVFAIL when none is left.
    private func next(_ forward: Forward) {
        forward.socket?.close()
        forward.socket = nil
        forward.incoming = []
        while true {
            forward.server += 1
            guard forward.server < upstreams.count else {
                if let query = try? DNSMessage.parseQuery(forward.query) {
                    send(DNSMessage.response(to: query, code: .serverFailure), to: forward.client)
                }
                return
            }
            if start(forward) { return }
        }
    }

    private func start(_ forward: Forward) -> Bool {
        let fd = socket(
            AF_INET,
            Int32(forward.overTCP ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
                | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        let connection = FileDescriptor(owning: fd)
        var server = upstreams[forward.server]
        let connected = withUnsafePointer(to: &server) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 || errno == EINPROGRESS else { connection.close(); return false }
        forward.socket = connection
        forward.deadline = Timestamp.monotonic() + DNSServer.upstreamTimeout
        if forward.overTCP {
            // Sent once the connection is made (POLLOUT).
            forward.outgoing = DNSMessage.lengthPrefixed(forward.query)
        } else {
            let sent = forward.query.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            guard sent == forward.query.count else { connection.close(); forward.socket = nil; return false }
        }
        return true
    }

    private func progress(_ forward: Forward, events: Int16) {
        guard let socket = forward.socket else { return }
        if !forward.outgoing.isEmpty {
            // A refused or failed connection shows as POLLERR/POLLHUP; the send then fails too.
            let sent = forward.outgoing.withUnsafeBytes {
                Glibc.send(socket.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 { if errno != EAGAIN && errno != EINTR { next(forward) }; return }
            forward.outgoing.removeFirst(sent)
            return
        }
        let n = buffer.withUnsafeMutableBytes { recv(socket.rawValue, $0.baseAddress, $0.count, 0) }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
        // ECONNREFUSED (an ICMP port unreachable on UDP), a closed TCP connection: the next server.
        guard n > 0 else { next(forward); return }
        let reply: [UInt8]
        if forward.overTCP {
            forward.incoming += buffer[0..<n]
            guard forward.incoming.count >= 2 else { return }
            let length = Int(forward.incoming[0]) << 8 | Int(forward.incoming[1])
            guard forward.incoming.count >= 2 + length else { return }
            reply = Array(forward.incoming[2..<(2 + length)])
        } else {
            reply = Array(buffer[0..<n])
        }
        // Only the answer to this query (its ID, QR set); anything else on the socket is ignored.
        guard reply.count >= DNSMessage.headerSize, DNSMessage.id(of: reply) == DNSMessage.id(of: forward.query),
            reply[2] & 0x80 != 0
        else {
            if forward.overTCP { next(forward) }
            return
        }
        send(reply, to: forward.client)
        socket.close()
        forward.socket = nil
    }

    // MARK: Answers out

    private func send(_ reply: [UInt8], to client: Client) {
        switch client {
        case .udp(var address):
            _ = reply.withUnsafeBytes { raw in
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            udp.rawValue, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), $0,
                            socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        case .tcp(let connection):
            guard !connection.closed, reply.count <= 65535 else { return }
            connection.outgoing += DNSMessage.lengthPrefixed(reply)
            flush(connection)
        }
    }

    private func flush(_ client: TCPClient) {
        guard !client.closed, !client.outgoing.isEmpty else { return }
        let sent = client.outgoing.withUnsafeBytes {
            Glibc.send(client.fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 { if errno != EAGAIN && errno != EINTR { close(client) }; return }
        client.outgoing.removeFirst(sent)
        client.lastActive = Timestamp.monotonic()
    }

    private func close(_ client: TCPClient) {
        guard !client.closed else { return }
        client.closed = true
        client.fd.close()
    }
}
