import BerthDNS
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import BerthClusterDNS

#if canImport(Glibc)
import Glibc
#endif

/// The server over real sockets on loopback: cluster names answered, others forwarded to a fake
/// upstream and cached, failures in DNS's own terms, and TCP as well as UDP.
@Suite(.serialized)
struct ClusterDNSServerTests {
    /// An upstream on loopback that answers every A question with 192.0.2.1 (TTL 60) and counts them.
    final class Counter: Sendable {
        let value = Mutex(0)
    }

    final class FakeUpstream: Sendable {
        let channel: any Channel
        let counter = Counter()

        init(group: MultiThreadedEventLoopGroup) async throws {
            let counter = self.counter
            channel = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Responder(counter: counter))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var port: Int { channel.localAddress?.port ?? 0 }
        var count: Int { counter.value.withLock { $0 } }

        final class Responder: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = AddressedEnvelope<ByteBuffer>
            typealias OutboundOut = AddressedEnvelope<ByteBuffer>
            let counter: Counter
            init(counter: Counter) { self.counter = counter }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let envelope = unwrapInboundIn(data)
                guard let query = try? DNSMessage.parseQuery(Array(envelope.data.readableBytesView)) else { return }
                counter.value.withLock { $0 += 1 }
                let reply = DNSMessage.response(
                    to: query, code: .noError,
                    answers: [DNSRecord(name: query.name, ttl: 60, data: .a(IPv4Address("192.0.2.1")!))],
                    authoritative: false)
                var buffer = context.channel.allocator.buffer(capacity: reply.count)
                buffer.writeBytes(reply)
                context.writeAndFlush(
                    wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)),
                    promise: nil)
            }
        }
    }

    /// A socket connected to 127.0.0.1:`port` (UDP or TCP) whose reads give up after 3 s; nil on failure.
    static func loopbackSocket(_ type: Int32, port: Int) -> Int32? {
        let fd = socket(AF_INET, type, 0)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// One UDP exchange: the reply, or nil.
    static func udp(_ packet: [UInt8], port: Int) -> [UInt8]? {
        guard let fd = loopbackSocket(Int32(SOCK_DGRAM.rawValue), port: port) else { return nil }
        defer { close(fd) }
        guard send(fd, packet, packet.count, 0) == packet.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65535)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[0..<count]) : nil
    }

    /// One exchange over TCP, framed with DNS's 2-byte length.
    static func tcp(_ packet: [UInt8], port: Int) -> [UInt8]? {
        guard let fd = loopbackSocket(Int32(SOCK_STREAM.rawValue), port: port) else { return nil }
        defer { close(fd) }
        let framed = DNSMessage.lengthPrefixed(packet)
        guard send(fd, framed, framed.count, 0) == framed.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65535)
        while received.count < 2 || received.count < 2 + (Int(received[0]) << 8 | Int(received[1])) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            received += buffer[0..<count]
        }
        return Array(received.dropFirst(2))
    }

    func withServer(
        upstreams: (FakeUpstream) -> [String], timeout: TimeAmount = .seconds(2),
        _ body: (Int, FakeUpstream) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let upstream = try await FakeUpstream(group: group)
        var settings = ClusterDNSServer.Configuration(address: "127.0.0.1")
        settings.port = 0
        settings.upstreams = upstreams(upstream)
        settings.upstreamTimeout = timeout
        let server = ClusterDNSServer(
            configuration: settings, zone: ClusterResolverTests.zone, logger: Logger(label: "test"))
        let port = try await server.start()
        do {
            try await body(port, upstream)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        try? await upstream.channel.close()
        try? await group.shutdownGracefully()
    }

    static func code(_ reply: [UInt8]?) -> UInt8? { reply.map { $0[3] & 0x0F } }

    @Test func clusterNamesAreAnsweredAndOthersForwardedThenCached() async throws {
        try await withServer(upstreams: { ["127.0.0.1:\($0.port)"] }) { port, upstream in
            let local = try #require(
                Self.udp(DNSMessage.query(id: 0x1234, name: "web.default.svc.cluster.local", type: 1), port: port))
            #expect(local[0] == 0x12 && local[1] == 0x34)
            #expect(local[2] & 0x04 == 0x04)  // authoritative
            #expect(DNSMessage.answerRecords(local).map(\.data) == [.a(IPv4Address("10.96.0.20")!)])

            let outside = try #require(Self.udp(DNSMessage.query(id: 0x4321, name: "example.com", type: 1), port: port))
            #expect(outside[0] == 0x43 && outside[1] == 0x21)
            #expect(DNSMessage.answerRecords(outside).map(\.data) == [.a(IPv4Address("192.0.2.1")!)])
            // Asked again: from the cache, with the new ID.
            let again = try #require(Self.udp(DNSMessage.query(id: 0x5555, name: "EXAMPLE.com", type: 1), port: port))
            #expect(again[0] == 0x55 && again[1] == 0x55)
            #expect(DNSMessage.answerRecords(again).map(\.data) == [.a(IPv4Address("192.0.2.1")!)])
            #expect(upstream.count == 1)

            // A label with a dot in it is another name, not a cached one's twin.
            var dotted = DNSMessage.query(id: 0x0101, name: "x", type: 1)
            dotted.replaceSubrange(12..<15, with: [11] + Array("example.com".utf8) + [0])
            _ = Self.udp(dotted, port: port)
            #expect(upstream.count == 2)
            // The cache hands back the asker's own letter case.
            let mixed = try #require(Self.udp(DNSMessage.query(id: 6, name: "ExAmPlE.CoM", type: 1), port: port))
            #expect(Array(mixed[12..<25]) == [7] + Array("ExAmPlE".utf8) + [3] + Array("CoM".utf8) + [0])
            #expect(upstream.count == 2)

            // An ExternalName: its CNAME, then the target's address from upstream.
            let mail = try #require(
                Self.udp(DNSMessage.query(id: 3, name: "mail.default.svc.cluster.local", type: 1), port: port))
            #expect(
                DNSMessage.answerRecords(mail).map(\.data) == [
                    .cname("smtp.example.com"), .a(IPv4Address("192.0.2.1")!),
                ])

            // TCP, framed.
            let overTCP = try #require(
                Self.tcp(DNSMessage.query(id: 9, name: "db.default.svc.cluster.local", type: 1), port: port))
            #expect(DNSMessage.answerRecords(overTCP).count == 2)
        }
    }

    @Test func badPacketsGetFORMERROrNothingAndTheServerGoesOn() async throws {
        try await withServer(upstreams: { ["127.0.0.1:\($0.port)"] }) { port, _ in
            // A header promising a question that is not there.
            let broken: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63]
            #expect(Self.code(Self.udp(broken, port: port)) == DNSMessage.ResponseCode.formatError.rawValue)
            // A name whose pointer points at itself.
            var loop = DNSMessage.query(id: 2, name: "x", type: 1)
            loop.replaceSubrange(12..<15, with: [0xC0, 12, 0])
            #expect(Self.code(Self.udp(loop, port: port)) == DNSMessage.ResponseCode.formatError.rawValue)
            let fine = Self.udp(DNSMessage.query(id: 3, name: "web.default.svc.cluster.local", type: 1), port: port)
            #expect(Self.code(fine) == 0)
        }
    }

    @Test func anUpstreamThatDoesNotAnswerIsSERVFAILAfterItsTimeout() async throws {
        // Nothing listens on the first; the fake upstream is not in the list at all.
        try await withServer(upstreams: { _ in ["127.0.0.1:9"] }, timeout: .milliseconds(200)) { port, upstream in
            let reply = Self.udp(DNSMessage.query(id: 4, name: "example.org", type: 1), port: port)
            #expect(Self.code(reply) == DNSMessage.ResponseCode.serverFailure.rawValue)
            #expect(reply?[0] == 0 && reply?[1] == 4)
            #expect(upstream.count == 0)
        }
    }
}
