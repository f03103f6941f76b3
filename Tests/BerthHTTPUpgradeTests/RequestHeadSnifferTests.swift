import NIOCore
import NIOEmbedded
import Testing

@testable import BerthHTTPUpgrade

/// The head sniffer in front of the API server's, the agent's and the streaming server's HTTP pipeline:
/// it decides on a connection's first request head and passes on every byte it read, in order.
struct RequestHeadSnifferTests {
    /// What reaches the handler behind the sniffer.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var received = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
        }
    }

    /// Feeds `chunks` as separate reads; returns the sniffer's decision (nil: not an upgrade) and what
    /// the next handler got once the sniffer left (without the head, for an upgrade's session).
    func sniffed(_ chunks: [String], dropHead: Bool = false) throws
        -> (decision: UpgradeRequestHead??, passedOn: String)
    {
        let channel = EmbeddedChannel()
        let sniffer = RequestHeadSniffer(promise: channel.eventLoop.makePromise())
        try channel.pipeline.syncOperations.addHandler(sniffer)
        // Set on the embedded loop (this thread) as the head completes.
        final class Decision: @unchecked Sendable { var value: UpgradeRequestHead?? = .none }
        let decision = Decision()
        sniffer.promise.futureResult.whenSuccess { decision.value = .some($0) }
        for chunk in chunks { try channel.writeInbound(ByteBuffer(string: chunk)) }
        // As the server does once it has decided: the next handlers in place, then the sniffer gone.
        let collector = Collector()
        try channel.pipeline.syncOperations.addHandler(collector)
        if dropHead { sniffer.dropHead() }
        try channel.pipeline.syncOperations.removeHandler(sniffer).wait()
        _ = try channel.finish()
        return (decision.value, collector.received)
    }

    @Test func aBodyThatComesAfterTheHeadIsPassedOnWithIt() throws {
        // A POST's head and body in separate reads (TLS records): the body came after the decision
        // and was once lost.
        let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n"
        let result = try sniffed([head, "{\"a\":1", "}"])
        guard case .some(.none) = result.decision else {
            Issue.record(
                "a plain request was taken for an upgrade, or not decided: \(String(describing: result.decision))")
            return
        }
        #expect(result.passedOn == head + "{\"a\":1}")
    }

    @Test func aSPDYUpgradeIsRecognisedAndItsFramesFollowWithoutTheHead() throws {
        let head =
            "POST /exec/ns/pod/c?command=ls HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
        let result = try sniffed(
            [head.prefix(20).description, head.dropFirst(20).description + "FRAME1", "FRAME2"], dropHead: true)
        guard case .some(.some(let request)) = result.decision else {
            Issue.record("a SPDY upgrade was not recognised")
            return
        }
        #expect(request.method == "POST")
        #expect(request.pathAndQuery.path == "/exec/ns/pod/c")
        #expect(request.pathAndQuery.query == "command=ls")
        #expect(request.values("x-stream-protocol-version") == ["v4.channel.k8s.io"])
        #expect(result.passedOn == "FRAME1FRAME2")
    }
}
