@testable import BerthCRI
import Testing

/// SPDY/3.1 framing as `kubectl port-forward` sends it: a client's SYN_STREAM with compressed headers,
/// data with FIN, pings; and the server's frames read back by the same decoder.
struct SPDYFrameTests {
    /// A client's SYN_STREAM, built as the draft lays it out.
    func synStream(_ id: UInt32, _ headers: [String: String], deflater: SPDYHeaderDeflater, fin: Bool = false)
        -> [UInt8]
    {
        let body =
            SPDYFrameEncoder.bigEndian(id) + SPDYFrameEncoder.bigEndian(0) + [0, 0] + deflater.block(headers)
        return SPDYFrameEncoder.control(1, flags: fin ? 1 : 0, body)
    }

    @Test func streamsDataAndPingsDecodeAcrossMessageBoundaries() throws {
        let client = SPDYHeaderDeflater()
        var bytes = synStream(1, ["streamType": "error", "port": "8080", "requestID": "0"], deflater: client)
        bytes += synStream(3, ["streamType": "data", "port": "8080", "requestID": "0"], deflater: client)
        bytes += SPDYFrameEncoder.data(3, Array("GET / HTTP/1.0\r\n\r\n".utf8), fin: true)
        bytes += SPDYFrameEncoder.ping(7)
        var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
        var frames: [SPDYFrame] = []
        // Fed a few bytes at a time, as WebSocket messages may cut frames anywhere.
        for start in stride(from: 0, to: bytes.count, by: 5) {
            decoder.append(bytes[start..<min(bytes.count, start + 5)])
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(frames.count == 4)
        // Header names arrive lower-cased (the draft's rule), one zlib stream across both blocks.
        #expect(
            frames[0]
                == .synStream(
                    streamID: 1, headers: ["streamtype": "error", "port": "8080", "requestid": "0"], fin: false))
        #expect(
            frames[1]
                == .synStream(
                    streamID: 3, headers: ["streamtype": "data", "port": "8080", "requestid": "0"], fin: false))
        #expect(frames[2] == .data(streamID: 3, payload: Array("GET / HTTP/1.0\r\n\r\n".utf8), fin: true))
        #expect(frames[3] == .ping(7))
    }

    @Test func theServersFramesReadBack() throws {
        let server = SPDYHeaderDeflater()
        var bytes = SPDYFrameEncoder.synReply(1, headerBlock: server.block([:]))
        bytes += SPDYFrameEncoder.synReply(3, headerBlock: server.block([:]))
        bytes += SPDYFrameEncoder.rstStream(5, status: SPDYFrame.protocolError)
        bytes += SPDYFrameEncoder.goAway(lastGoodStreamID: 5)
        var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
        decoder.append(bytes)
        var frames: [SPDYFrame] = []
        while let frame = try decoder.next() { frames.append(frame) }
        #expect(
            frames == [
                .synReply(streamID: 1, headers: [:], fin: false), .synReply(streamID: 3, headers: [:], fin: false),
                .rstStream(streamID: 5, status: 1), .goAway(lastGoodStreamID: 5, status: 0),
            ])
    }

    @Test func otherVersionsAndCorruptHeadersAreRefused() {
        var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
        decoder.append([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1])
        #expect(throws: SPDYError.self) { _ = try decoder.next() }
        var corrupt = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
        corrupt.append(
            SPDYFrameEncoder.control(1, SPDYFrameEncoder.bigEndian(1) + [0, 0, 0, 0, 0, 0] + [1, 2, 3, 4, 5]))
        #expect(throws: SPDYError.self) { _ = try corrupt.next() }
    }

    @Test func theDictionaryIsTheDraftsSize() {
        // 1,423 bytes in draft-mbelshe-httpbis-spdy-00; zlib would refuse a peer's stream otherwise.
        #expect(SPDYDictionary.bytes.count == 1423)
        #expect(Array(SPDYDictionary.bytes.prefix(11)) == [0, 0, 0, 7] + Array("options".utf8))
        #expect(Array(SPDYDictionary.bytes.suffix(7)) == Array(",enq=0.".utf8))
    }
}
