#if canImport(Glibc)
import Glibc
#endif
import BerthNetwork
import BerthOS
import FoundationEssentials
import Testing

/// The embedded DNS server (127.0.0.11) of containers on user-defined networks, as a docker user meets
/// it: names, aliases and short IDs of containers on a shared network resolve, others do not, and the
/// rest of the world's names are forwarded. Every container here is given `--dns` on the host's loopback
/// (a fake server, or an address where nothing listens) so that no query leaves the machine.
@Suite(.serialized, .enabled(if: isRealRoot, "creates networks and containers: needs real root"))
final class EngineDNSTests {
    let box: EngineBox
    /// Nothing listens here: a forwarded query is refused at once and the client gets SERVFAIL.
    static let deadUpstream = "127.0.0.9"

    init() throws { box = try EngineBox("dns") }
    deinit { box.tearDown() }

    static let server =
        "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from %s\\n' $(hostname) | nc -l -p 80; done"

    /// Makes a user network for `body`, and removes it (with every container) afterwards.
    func withNetworks(_ count: Int = 1, _ body: ([String]) throws -> Void) throws {
        let names = (0..<count).map { _ in "bd\(UInt32.random(in: 0...UInt32.max) % 100000)" }
        for name in names {
            let created = try box.berthNoun("network", ["create", name])
            try #require(created.status == .exited(0), "\(created.stderrText)")
        }
        defer {
            if let ids = try? box.berth(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
                !ids.isEmpty
            {
                _ = try? box.berth(["rm", "-f"] + ids)
            }
            for name in names { _ = try? box.berthNoun("network", ["rm", name]) }
        }
        try body(names)
    }

    /// `berth run --rm` on `network` with the dead upstream, the command's output and status.
    func run(on network: String, dns: String = deadUpstream, _ command: String) throws -> ChildProcess.Output {
        try box.berth(["run", "--rm", "--network", network, "--dns", dns, box.image, "sh", "-c", command])
    }

    /// An A query over TCP to 127.0.0.11 from inside the container's namespace (busybox's nslookup has
    /// no TCP mode): prints the answer's ID in hex and the last four bytes as an address.
    func tcpQuery(id: String, queryID: UInt16, name: String) throws -> ChildProcess.Output {
        let labels = name.split(separator: ".").map { label in
            let hex = String(label.count, radix: 16)
            return "b'\\x\(hex.count == 1 ? "0" + hex : hex)\(label)'"
        }.joined(separator: " + ")
        let script = """
            import socket, struct
            q = struct.pack('>HHHHHH', \(queryID), 0x0100, 1, 0, 0, 0) + \(labels) + b'\\x00' + struct.pack('>HH', 1, 1)
            s = socket.create_connection(('127.0.0.11', 53), timeout=5)
            s.sendall(struct.pack('>H', len(q)) + q)
            data = b''
            while len(data) < 2 or len(data) < 2 + struct.unpack('>H', data[:2])[0]:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            r = data[2:]
            print(hex(struct.unpack('>H', r[:2])[0]), '.'.join(str(b) for b in r[-4:]))
            """
        return try ChildProcess.run(
            "/usr/bin/nsenter",
            arguments: ["nsenter", "--net=\(box.run)/netns/\(id)", "/usr/bin/python3", "-c", script],
            environment: ["PATH=/usr/bin:/bin"])
    }

    @Test func containersOnAUserNetworkFindEachOtherByNameAliasAndShortID() throws {
        try withNetworks { networks in
            let net = networks[0]
            let started = try box.berth([
                "run", "-d", "--name", "server", "-h", "server", "--network", net, "--network-alias", "web",
                "--dns", Self.deadUpstream, box.image, "sh", "-c", Self.server,
            ])
            try #require(started.status == .exited(0), "\(started.stderrText)")
            let address = try box.inspect("server", "{{.NetworkSettings.Networks.\(net).IPAddress}}")
            let shortID = String(try box.inspect("server", "{{.Id}}").prefix(12))

            let resolv = try run(on: net, "cat /etc/resolv.conf").stdoutText
            #expect(resolv.contains("nameserver 127.0.0.11\n"), "\(resolv)")
            #expect(resolv.contains("ndots:0"), "\(resolv)")
            #expect(!resolv.contains(Self.deadUpstream), "the upstream is the resolver's business: \(resolv)")

            // By name, as a program would use it (the program's first lookup, right at its start).
            var answer = ""
            _ = try box.eventually {
                answer = try run(on: net, "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 server 80").stdoutText
                return answer.hasSuffix("hello from server\n")
            }
            #expect(answer.hasSuffix("hello from server\n"))

            // Alias, upper case, trailing dot, short ID: all the same address.
            for name in ["web", "SERVER", "server.", shortID, "server.\(net)"] {
                let lookup = try run(on: net, "nslookup \(name)")
                #expect(lookup.status == .exited(0), "\(name): \(lookup.stdoutText)\(lookup.stderrText)")
                #expect(lookup.stdoutText.contains("Address: \(address)"), "\(name): \(lookup.stdoutText)")
            }
            // Reverse: NAME.NETWORK.
            let reverse = try run(on: net, "nslookup \(address)").stdoutText
            #expect(reverse.contains("server.\(net)"), "\(reverse)")

            // The default bridge keeps docker's old behaviour: the upstream itself, no resolver.
            let bridge = try box.berth([
                "run", "--rm", "--dns", Self.deadUpstream, box.image, "cat", "/etc/resolv.conf",
            ]).stdoutText
            #expect(bridge.contains("nameserver \(Self.deadUpstream)") && !bridge.contains("127.0.0.11"), "\(bridge)")
        }
    }

    @Test func onlyContainersThatShareANetworkResolveAndTheRecordIsReadAtEachQuery() throws {
        try withNetworks(2) { networks in
            let (front, back) = (networks[0], networks[1])
            _ = try box.berth([
                "run", "-d", "--name", "client", "--network", front, "--dns", Self.deadUpstream, box.image, "sleep",
                "1000",
            ])
            _ = try box.berth([
                "run", "-d", "--name", "hidden", "--network", back, "--dns", Self.deadUpstream, box.image, "sleep",
                "1000",
            ])
            // Another network's container: not found (forwarded, and the dead upstream makes it SERVFAIL).
            let other = try box.berth(["exec", "client", "nslookup", "hidden"])
            #expect(other.status != .exited(0), "\(other.stdoutText)")
            #expect(
                other.stdoutText.contains("SERVFAIL") || other.stderrText.contains("SERVFAIL"),
                "\(other.stdoutText)\(other.stderrText)")

            // Started after the client: found by the client's resolver, which has never heard of it before.
            _ = try box.berth([
                "run", "-d", "--name", "late", "--network", front, "--dns", Self.deadUpstream, box.image, "sleep",
                "1000",
            ])
            let address = try box.inspect("late", "{{.NetworkSettings.Networks.\(front).IPAddress}}")
            let found = try box.berth(["exec", "client", "nslookup", "late"])
            #expect(found.stdoutText.contains("Address: \(address)"), "\(found.stdoutText)\(found.stderrText)")
            // Stopped: gone.
            _ = try box.berth(["stop", "-t", "0", "late"])
            #expect(try box.berth(["exec", "client", "nslookup", "late"]).status != .exited(0))
        }
    }

    /// A DNS server on a user network (`--expose 53/udp`, as dnsmasq or pihole images declare): it binds
    /// 0.0.0.0:53 itself, so it gets no resolver of ours there, and keeps the container's --dns servers.
    @Test func aContainerThatExposesPort53CanBindIt() throws {
        try withNetworks { networks in
            let out = try box.berth([
                "run", "--rm", "--network", networks[0], "--expose", "53/udp", "--dns", Self.deadUpstream, box.image,
                "sh", "-c", "cat /etc/resolv.conf; nc -l -p 53 -w 1 </dev/null; echo bound=$?",
            ])
            #expect(
                out.stdoutText.contains("nameserver \(Self.deadUpstream)") && !out.stdoutText.contains("127.0.0.11"),
                "\(out.stdoutText)")
            #expect(
                !out.stdoutText.contains("Address already in use")
                    && !out.stderrText.contains("Address already in use"),
                "\(out.stdoutText)\(out.stderrText)")
        }
    }

    @Test func theResolverAnswersOverTCPToo() throws {
        try withNetworks { networks in
            let net = networks[0]
            _ = try box.berth([
                "run", "-d", "--name", "server", "--network", net, "--dns", Self.deadUpstream, box.image, "sleep",
                "1000",
            ])
            let address = try box.inspect("server", "{{.NetworkSettings.Networks.\(net).IPAddress}}")
            let id = try box.inspect("server", "{{.Id}}")
            // busybox's nslookup has no TCP mode: python3 asks from inside the container's namespace.
            let asked = try tcpQuery(id: id, queryID: 0x1234, name: "Server")
            #expect(asked.stdoutText == "0x1234 \(address)\n", "\(asked.stdoutText)\(asked.stderrText)")
        }
    }

    @Test func hostilePacketsNeitherCrashNorStallTheResolver() throws {
        try withNetworks { networks in
            let net = networks[0]
            _ = try box.berth([
                "run", "-d", "--name", "server", "--network", net, "--dns", Self.deadUpstream, box.image, "sleep",
                "1000",
            ])
            let address = try box.inspect("server", "{{.NetworkSettings.Networks.\(net).IPAddress}}")
            let id = try box.inspect("server", "{{.Id}}")
            // Pointer loops, truncations, random bytes over UDP; a TCP client that promises 64 KiB and
            // leaves, one that sends half a message and stays; then an ordinary query must be answered.
            let script = """
                import os, socket, struct, random
                hdr = struct.pack('>HHHHHH', 7, 0x0100, 1, 0, 0, 0)
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                bad = [hdr + b'\\xc0\\x0c\\x00\\x01\\x00\\x01', hdr + b'\\x01a\\xc0\\x0c', hdr[:5], b'', hdr + b'\\x3f' + b'a' * 10,
                       hdr + b'\\x40\\x00\\x00\\x01\\x00\\x01']
                bad += [os.urandom(random.randint(0, 600)) for _ in range(2000)]
                for p in bad:
                    u.sendto(p, ('127.0.0.11', 53))
                t1 = socket.create_connection(('127.0.0.11', 53)); t1.sendall(b'\\xff\\xff' + b'x' * 100); t1.close()
                t2 = socket.create_connection(('127.0.0.11', 53)); t2.sendall(b'\\x00\\x40' + b'x' * 10)
                q = struct.pack('>HHHHHH', 0x4321, 0x0100, 1, 0, 0, 0) + b'\\x06server\\x00' + struct.pack('>HH', 1, 1)
                # A flood may overrun the socket's buffer, so the query is resent as a resolver would
                # (every second, ten times): the server must still answer, not merely have survived.
                v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.settimeout(1)
                r = b''
                for attempt in range(10):
                    v.sendto(q, ('127.0.0.11', 53))
                    try:
                        while r[:2] != b'\\x43\\x21':
                            r, _ = v.recvfrom(4096)
                        break
                    except socket.timeout:
                        continue
                print(hex(struct.unpack('>H', r[:2])[0]), '.'.join(str(b) for b in r[-4:]))
                """
            let asked = try ChildProcess.run(
                "/usr/bin/nsenter",
                arguments: ["nsenter", "--net=\(box.run)/netns/\(id)", "/usr/bin/python3", "-c", script],
                environment: ["PATH=/usr/bin:/bin"])
            #expect(asked.stdoutText == "0x4321 \(address)\n", "\(asked.stdoutText)\(asked.stderrText)")
            // The answer came from the monitor, so it is alive; and the engine still sees it so.
            #expect(try box.inspect("server", "{{.State.Status}} {{.State.Error}}") == "running")
        }
    }

    @Test(
        .enabled(
            if: FakeUpstream.canBind,
            "127.0.0.153:53 (UDP or TCP) is taken on this host: the upstream test needs it for a fake server"))
    func otherNamesAreForwardedToTheUpstreamFromTheHostsNamespace() throws {
        let upstream = try #require(FakeUpstream(address: "127.0.0.153", name: "upstream.test", answer: "192.0.2.7"))
        defer { upstream.stop() }
        try withNetworks { networks in
            // 127.0.0.153 only exists on the host's loopback: the query must leave from the host's namespace.
            let lookup = try run(on: networks[0], dns: "127.0.0.153", "nslookup upstream.test")
            #expect(lookup.status == .exited(0), "\(lookup.stdoutText)\(lookup.stderrText)")
            #expect(lookup.stdoutText.contains("Address: 192.0.2.7"), "\(lookup.stdoutText)")
            let missing = try run(on: networks[0], dns: "127.0.0.153", "nslookup missing.test")
            #expect(missing.stdoutText.contains("NXDOMAIN"), "\(missing.stdoutText)\(missing.stderrText)")

            // Over TCP the query goes upstream over TCP (the fake server answers both).
            _ = try box.berth([
                "run", "-d", "--name", "asker", "--network", networks[0], "--dns", "127.0.0.153", box.image, "sleep",
                "1000",
            ])
            let id = try box.inspect("asker", "{{.Id}}")
            let asked = try tcpQuery(id: id, queryID: 0x5678, name: "upstream.test")
            #expect(asked.stdoutText == "0x5678 192.0.2.7\n", "\(asked.stdoutText)\(asked.stderrText)")
        }
    }
}

/// A DNS server on the host's loopback (UDP and TCP) that knows one name; on a thread of the test process.
final class FakeUpstream {
    let udp: Int32
    let tcp: Int32
    /// Written to by stop(); close-on-exec, so no `berth` started meanwhile holds it.
    let stopPipe: Pipe
    var thread = pthread_t()

    /// Whether port 53 of 127.0.0.153 can be bound (nothing on it or on the wildcard address).
    static let canBind: Bool = {
        guard isRealRoot, let u = FakeUpstream.bind("127.0.0.153", type: SOCK_DGRAM) else { return false }
        defer { close(u) }
        guard let t = FakeUpstream.bind("127.0.0.153", type: SOCK_STREAM) else { return false }
        close(t)
        return true
    }()

    static func bind(_ address: String, type: __socket_type) -> Int32? {
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = UInt16(53).bigEndian
        sa.sin_addr.s_addr = inet_addr(address)
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, type != SOCK_STREAM || listen(fd, 8) == 0 else { close(fd); return nil }
        return fd
    }

    struct Job {
        var udp: Int32
        var tcp: Int32
        var stop: Int32
        var name: String
        var answer: IPv4Address
    }

    init?(address: String, name: String, answer: String) {
        guard let udp = FakeUpstream.bind(address, type: SOCK_DGRAM), let ip = IPv4Address(answer) else { return nil }
        guard let tcp = FakeUpstream.bind(address, type: SOCK_STREAM) else { close(udp); return nil }
        guard let stopPipe = try? Pipe() else { close(udp); close(tcp); return nil }
        self.udp = udp
        self.tcp = tcp
        self.stopPipe = stopPipe
        let job = UnsafeMutablePointer<Job>.allocate(capacity: 1)
        job.initialize(to: Job(udp: udp, tcp: tcp, stop: stopPipe.reading.rawValue, name: name, answer: ip))
        pthread_create(
            &thread, nil,
            { raw in
                let pointer = raw!.assumingMemoryBound(to: Job.self)
                let job = pointer.move()
                pointer.deallocate()
                func reply(_ packet: [UInt8]) -> [UInt8]? {
                    guard let query = try? DNSMessage.parseQuery(packet) else { return nil }
                    if query.name == job.name {
                        return DNSMessage.response(
                            to: query, code: .noError,
                            answers: query.type == DNSMessage.RecordType.a ? [.a(job.answer)] : [])
                    }
                    return DNSMessage.response(to: query, code: .nameError)
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    var fds = [
                        pollfd(fd: job.udp, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: job.tcp, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: job.stop, events: Int16(POLLIN), revents: 0),
                    ]
                    guard poll(&fds, 3, -1) >= 0 else { continue }
                    if fds[2].revents != 0 { return nil }
                    if fds[0].revents != 0 {
                        var from = sockaddr_in()
                        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                        let n = buffer.withUnsafeMutableBytes { bytes in
                            withUnsafeMutablePointer(to: &from) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                    recvfrom(job.udp, bytes.baseAddress, bytes.count, 0, $0, &length)
                                }
                            }
                        }
                        if n > 0, let answer = reply(Array(buffer[0..<n])) {
                            _ = answer.withUnsafeBytes { bytes in
                                withUnsafePointer(to: &from) {
                                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                        sendto(job.udp, bytes.baseAddress, bytes.count, 0, $0, length)
                                    }
                                }
                            }
                        }
                    }
                    if fds[1].revents != 0 {
                        // One length-prefixed query per connection, read with a deadline so a stuck client cannot hang the test.
                        let connection = accept(job.tcp, nil, nil)
                        guard connection >= 0 else { continue }
                        var timeout = timeval(tv_sec: 5, tv_usec: 0)
                        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                        var received: [UInt8] = []
                        while true {
                            let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                            if n <= 0 { break }
                            received += buffer[0..<n]
                            if received.count >= 2, received.count >= 2 + (Int(received[0]) << 8 | Int(received[1])) {
                                break
                            }
                        }
                        if received.count > 2, let answer = reply(Array(received[2...])) {
                            let framed = DNSMessage.lengthPrefixed(answer)
                            _ = framed.withUnsafeBytes {
                                send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                            }
                        }
                        close(connection)
                    }
                }
            }, job)
    }

    func stop() {
        try? stopPipe.writing.write([1])
        pthread_join(thread, nil)
        close(udp)
        close(tcp)
        stopPipe.reading.close()
        stopPipe.writing.close()
    }
}
