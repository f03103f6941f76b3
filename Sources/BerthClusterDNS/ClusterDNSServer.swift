import BerthDNS
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The cluster DNS server: UDP and TCP (RFC 7766) on one address, answering the cluster domain from a
/// ``ClusterZone`` snapshot and forwarding other names to the node's resolvers, with a cache. Everything
/// runs on one event loop — the sockets, the forwarder's pending queries and the cache — so none of it
/// takes a lock; only the zone snapshot, replaced from outside, sits behind a mutex.
public final class ClusterDNSServer: Sendable {
    public struct Configuration: Sendable {
        /// Where it listens (the kube-dns Service address on the node's own interface).
        public var address: String
        public var port = 53
        /// The resolvers other names go to, tried in order: `IP` or `IP:port`.
        public var upstreams: [String] = []
        /// How long an upstream has to answer before the next is tried; after the last, SERVFAIL.
        public var upstreamTimeout: TimeAmount = .seconds(2)
        /// Forwarded answers kept (CoreDNS's cache plugin: 9,984 by default).
        public var cacheCapacity = 10_000
        /// Queries waiting for an upstream at once; more are refused (CoreDNS's forward max_concurrent).
        public var maximumPending = 1000

        public init(address: String) { self.address = address }
    }

    let configuration: Configuration
    let group: MultiThreadedEventLoopGroup
    let zone: Mutex<ClusterZone>
    let channels = Mutex<[any Channel]>([])
    let logger: Logger

    public init(configuration: Configuration, zone: ClusterZone, logger: Logger) {
        self.configuration = configuration
        self.zone = Mutex(zone)
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Replaces what the cluster domain answers.
    public func update(_ zone: ClusterZone) { self.zone.withLock { $0 = zone } }

    func snapshot() -> ClusterZone { zone.withLock { $0 } }

    /// Binds UDP and TCP and the forwarder's socket; returns the bound port (useful when `port` is 0 for
    /// UDP: TCP then binds the same number).
    @discardableResult
    public func start() async throws -> Int {
        let loop = group.next()
        let server = self
        let upstreams = configuration.upstreams.compactMap(Self.socketAddress)
        let forwarder = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ForwarderHandler())
                }
            }
            .bind(host: "0.0.0.0", port: 0).get()
        let core = try await loop.submit {
            DNSCore(server: server, forwarder: forwarder, upstreams: upstreams, loop: loop)
        }.get()
        try await forwarder.pipeline.handler(type: ForwarderHandler.self).map { $0.core = core }.get()
        let udp = try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            // recvmmsg: up to 64 queries per read; the answers go out together at the read's end
            // (sendmmsg), one system call each way for a burst rather than one per packet.
            .channelOption(.datagramVectorReadMessageCount, value: 64)
            // The read buffer is shared out among the 64: 4 KB each (the EDNS size clients offer), or a
            // query would be cut at 32 bytes.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 4096))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(core: core))
                }
            }
            .bind(host: configuration.address, port: configuration.port).get()
        let port = udp.localAddress?.port ?? configuration.port
        let tcp = try await ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: .seconds(10)),
                        ByteToMessageHandler(TwoByteLengthFrameDecoder()),
                        TCPQueryHandler(core: core),
                    ])
                }
            }
            .bind(host: configuration.address, port: port).get()
        channels.withLock { $0 = [udp, tcp, forwarder] }
        logger.info(
            "cluster DNS listening",
            metadata: ["address": "\(configuration.address):\(port)", "upstreams": "\(configuration.upstreams)"])
        return port
    }

    public func stop() async {
        for channel in channels.withLock({ $0 }) { try? await channel.close() }
        try? await group.shutdownGracefully()
    }

    /// `IP` (port 53) or `IP:port`, IPv4.
    static func socketAddress(_ text: String) -> SocketAddress? {
        let parts = text.split(separator: ":")
        let port = parts.count == 2 ? Int(parts[1]) ?? 53 : 53
        guard parts.count <= 2, let ip = parts.first, IPv4Address(ip) != nil else { return nil }
        return try? SocketAddress(ipAddress: String(ip), port: port)
    }
}

/// The server's state, confined to its event loop: answers, the forwarder's queries in flight, the cache.
final class DNSCore: @unchecked Sendable {
    /// Where an answer goes: a UDP client (its address, the size it takes) or a TCP connection.
    enum Client {
        case udp(any Channel, SocketAddress, limit: Int)
        case tcp(any Channel)
    }

    struct Pending {
        var client: Client
        var clientID: UInt16
        var query: [UInt8]
        var question: DNSMessage.Query
        var upstream: Int
        var timeout: Scheduled<Void>?
        /// An ExternalName being followed: the answer is built from this CNAME and the upstream's records.
        var chase: (original: DNSMessage.Query, cname: DNSRecord)?
        var cacheKey: CacheKey?
    }

    struct CacheEntry {
        var response: [UInt8]
        var stored: NIODeadline
        var expires: NIODeadline
    }

    /// What makes two queries the same to the cache: the question as sent on the wire (so labels with
    /// dots in them cannot pass for other names), lower-cased; and what shapes the answer — the EDNS
    /// size offered (a reply sized for 4,096 bytes does not go to a 512-byte client), DO, CD and TCP.
    struct CacheKey: Hashable {
        var question: [UInt8]
        var payloadSize: Int
        var dnssecOK: Bool
        var checkingDisabled: Bool
        var overTCP: Bool

        init(_ query: DNSMessage.Query, packet: [UInt8], overTCP: Bool) {
            var question = query.questionBytes
            // The name's bytes lower-cased (length bytes are under 64, never a capital letter).
            for i in 0..<(question.count - 4) where question[i] >= 65 && question[i] <= 90 { question[i] += 32 }
            self.question = question
            let edns = DNSMessage.edns(packet)
            payloadSize = edns?.payloadSize ?? 0
            dnssecOK = edns?.dnssecOK ?? false
            checkingDisabled = query.flags & 0x0010 != 0
            self.overTCP = overTCP
        }
    }

    unowned let server: ClusterDNSServer
    let forwarder: any Channel
    let upstreams: [SocketAddress]
    let loop: any EventLoop
    var pending: [UInt16: Pending] = [:]
    var cache: [CacheKey: CacheEntry] = [:]
    var lastSweep = NIODeadline.now()

    init(server: ClusterDNSServer, forwarder: any Channel, upstreams: [SocketAddress], loop: any EventLoop) {
        self.server = server
        self.forwarder = forwarder
        self.upstreams = upstreams
        self.loop = loop
    }

    func handle(_ packet: [UInt8], from client: Client) {
        guard let query = try? DNSMessage.parseQuery(packet) else {
            if let reply = DNSMessage.headerOnlyResponse(to: packet, code: .formatError) { send(reply, to: client) }
            return
        }
        // A TCP message has a 2-byte length: beyond 65,535 bytes the answer goes out truncated too.
        var limit = Int(UInt16.max)
        if case .udp(_, _, let size) = client { limit = size }
        let zone = server.snapshot()
        switch ClusterResolver.resolve(query, in: zone) {
        case .answer(let code, let answers, let authority, let additional):
            send(
                DNSMessage.response(
                    to: query, code: code, answers: answers, authority: authority, additional: additional,
                    authoritative: true, udpLimit: limit),
                to: client)
        case .chase(let cname, let target):
            let lookup = DNSMessage.query(id: 0, name: target, type: query.type, qclass: query.qclass)
            guard let targetQuery = try? DNSMessage.parseQuery(lookup) else {
                send(DNSMessage.response(to: query, code: .noError, answers: [cname], authoritative: true), to: client)
                return
            }
            // An alias of another name in the cluster domain is answered here, as CoreDNS's plugin
            // chain does; only names outside it go upstream.
            if case .answer(let code, let answers, let authority, _) = ClusterResolver.resolve(targetQuery, in: zone) {
                send(
                    DNSMessage.response(
                        to: query, code: code, answers: [cname] + answers, authority: answers.isEmpty ? authority : [],
                        authoritative: true, udpLimit: limit),
                    to: client)
                return
            }
            forward(
                lookup, question: targetQuery, client: client, clientID: query.id, chase: (query, cname),
                cacheKey: nil)
        case .forward:
            var overTCP = false
            if case .tcp = client { overTCP = true }
            let key = CacheKey(query, packet: packet, overTCP: overTCP)
            if let entry = cache[key] {
                let now = NIODeadline.now()
                if entry.expires > now {
                    var reply = entry.response
                    DNSMessage.setID(&reply, query.id)
                    // The client's own question (its letter case: 0x20 randomisation), and TTLs less
                    // the time the answer spent here, as CoreDNS's cache hands them out.
                    let questionEnd = DNSMessage.headerSize + query.questionBytes.count
                    if reply.count >= questionEnd {
                        reply.replaceSubrange(DNSMessage.headerSize..<questionEnd, with: query.questionBytes)
                    }
                    let elapsed = (now - entry.stored).nanoseconds / 1_000_000_000
                    if DNSMessage.ageTTLs(&reply, by: UInt32(clamping: elapsed)) {
                        send(reply, to: client)
                        return
                    }
                }
                cache[key] = nil
            }
            forward(packet, question: query, client: client, clientID: query.id, chase: nil, cacheKey: key)
        }
    }

    func forward(
        _ packet: [UInt8], question: DNSMessage.Query, client: Client, clientID: UInt16,
        chase: (original: DNSMessage.Query, cname: DNSRecord)?, cacheKey: CacheKey?
    ) {
        guard !upstreams.isEmpty, pending.count < server.configuration.maximumPending else {
            send(Self.serverFailure(chase?.original ?? question), to: client)
            return
        }
        var id = UInt16.random(in: 0...UInt16.max)
        while pending[id] != nil { id = UInt16.random(in: 0...UInt16.max) }
        var query = packet
        DNSMessage.setID(&query, id)
        pending[id] = Pending(
            client: client, clientID: clientID, query: query, question: question, upstream: 0, timeout: nil,
            chase: chase, cacheKey: cacheKey)
        send(id, toUpstream: 0)
    }

    func send(_ id: UInt16, toUpstream index: Int) {
        guard var entry = pending[id] else { return }
        entry.upstream = index
        entry.timeout = loop.scheduleTask(in: server.configuration.upstreamTimeout) { [self] in
            guard let waiting = pending[id] else { return }
            if waiting.upstream + 1 < upstreams.count {
                send(id, toUpstream: waiting.upstream + 1)
            } else {
                pending[id] = nil
                send(Self.serverFailure(waiting.chase?.original ?? waiting.question), to: waiting.client)
            }
        }
        pending[id] = entry
        var buffer = forwarder.allocator.buffer(capacity: entry.query.count)
        buffer.writeBytes(entry.query)
        forwarder.writeAndFlush(AddressedEnvelope(remoteAddress: upstreams[index], data: buffer), promise: nil)
    }

    /// SERVFAIL for the client's own query (its ID: what it asked, not what went upstream).
    static func serverFailure(_ query: DNSMessage.Query) -> [UInt8] {
        DNSMessage.response(to: query, code: .serverFailure, answers: [], authoritative: false)
    }

    /// A reply from an upstream: matched by ID and question (anything else is dropped, as a spoofing
    /// attempt would be), given back the client's ID, cached by its smallest TTL.
    func upstreamReply(_ packet: [UInt8], from address: SocketAddress) {
        guard packet.count >= DNSMessage.headerSize, let id = DNSMessage.id(of: packet), let waiting = pending[id],
            address == upstreams[waiting.upstream],
            let question = try? DNSMessage.parseQuery(Self.asQuery(packet)),
            question.labels == waiting.question.labels, question.type == waiting.question.type
        else { return }
        pending[id] = nil
        waiting.timeout?.cancel()
        let code = packet[3] & 0x0F
        if let chase = waiting.chase {
            let records = DNSMessage.answerRecords(packet)
            send(
                DNSMessage.response(
                    to: chase.original, code: DNSMessage.ResponseCode(rawValue: code) ?? .serverFailure,
                    answers: [chase.cname] + records, authoritative: false),
                to: waiting.client)
            return
        }
        var reply = packet
        DNSMessage.setID(&reply, waiting.clientID)
        send(reply, to: waiting.client)
        // NOERROR and NXDOMAIN are kept for their records' smallest TTL (at most an hour, as CoreDNS);
        // failures are not kept, nor what came truncated.
        if let key = waiting.cacheKey, code == 0 || code == 3, packet[2] & 0x02 == 0,
            let ttl = DNSMessage.minimumTTL(packet), ttl > 0
        {
            let now = NIODeadline.now()
            if cache.count >= server.configuration.cacheCapacity {
                // Expired entries swept at most every 10 s (a sweep is the whole cache); else a random
                // one makes room, so a pod asking for endless new names cannot stall the loop.
                if now - lastSweep > .seconds(10) {
                    lastSweep = now
                    cache = cache.filter { $0.value.expires > now }
                }
                if cache.count >= server.configuration.cacheCapacity, let victim = cache.keys.randomElement() {
                    cache[victim] = nil
                }
            }
            cache[key] = CacheEntry(response: reply, stored: now, expires: now + .seconds(Int64(min(ttl, 3600))))
        }
    }

    /// A reply's header with QR cleared, so its question reads as a query's.
    static func asQuery(_ packet: [UInt8]) -> [UInt8] {
        var copy = packet
        copy[2] &= 0x7F
        return copy
    }

    /// Answers written while a read is handled are flushed once at its end (``UDPQueryHandler``);
    /// answers that come later (from an upstream) are flushed at once.
    var batching: (any Channel)?

    func send(_ reply: [UInt8], to client: Client) {
        switch client {
        case .udp(let channel, let address, _):
            var buffer = channel.allocator.buffer(capacity: reply.count)
            buffer.writeBytes(reply)
            let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
            if batching === channel {
                channel.write(envelope, promise: nil)
            } else {
                channel.writeAndFlush(envelope, promise: nil)
            }
        case .tcp(let channel):
            var buffer = channel.allocator.buffer(capacity: reply.count + 2)
            buffer.writeInteger(UInt16(truncatingIfNeeded: reply.count))
            buffer.writeBytes(reply)
            channel.writeAndFlush(buffer, promise: nil)
        }
    }
}

final class UDPQueryHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let core: DNSCore

    init(core: DNSCore) { self.core = core }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let packet = Array(envelope.data.readableBytesView)
        let limit = DNSMessage.ednsPayloadSize(packet) ?? DNSMessage.classicUDPLimit
        core.batching = context.channel
        core.handle(packet, from: .udp(context.channel, envelope.remoteAddress, limit: limit))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        core.batching = nil
        context.flush()
    }
}

final class TCPQueryHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let core: DNSCore

    init(core: DNSCore) { self.core = core }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.handle(Array(unwrapInboundIn(data).readableBytesView), from: .tcp(context.channel))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle for 10 s: closed, as RFC 7766 lets a server do.
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class ForwarderHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    var core: DNSCore?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        core?.upstreamReply(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }

    // An ICMP error for one upstream (port unreachable) must not end the forwarder.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// DNS over TCP's framing: each message after its 2-byte length (RFC 1035 §4.2.2).
struct TwoByteLengthFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}
