import CZlib

/// SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00): what `kubectl port-forward` speaks to a kubelet's
/// streaming server, tunnelled through a WebSocket. Control frames start with the control bit and the
/// version (3), then their type; data frames with a stream's ID. Header blocks are zlib-compressed, one
/// stream per direction for the whole connection (``SPDYHeaderInflater``, ``SPDYHeaderDeflater``).
enum SPDYFrame: Equatable, Sendable {
    case synStream(streamID: UInt32, headers: [String: String], fin: Bool)
    case synReply(streamID: UInt32, headers: [String: String], fin: Bool)
    case rstStream(streamID: UInt32, status: UInt32)
    case settings
    case ping(UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, headers: [String: String], fin: Bool)
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, payload: [UInt8], fin: Bool)
    /// A control frame type SPDY/3.1 does not define: skipped, as the draft says.
    case unknown(type: UInt16)

    static let version: UInt16 = 3
    static let flagFin: UInt8 = 0x01
    /// RST_STREAM's status codes the server uses.
    static let protocolError: UInt32 = 1
    static let cancel: UInt32 = 5
    /// The largest frame accepted (a length is 24 bits; kubectl's frames are far smaller).
    static let maximumLength = 1 << 24 - 1
}

struct SPDYError: Error, CustomStringConvertible {
    var description: String
}

/// Frames from a byte stream as it arrives (a WebSocket message may hold part of a frame, or several).
struct SPDYFrameDecoder {
    private var buffer: [UInt8] = []
    private var offset = 0
    let inflater: SPDYHeaderInflater

    init(inflater: SPDYHeaderInflater) { self.inflater = inflater }

    mutating func append(_ bytes: some Collection<UInt8>) {
        if offset > 0 && offset == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            offset = 0
        }
        buffer += bytes
    }

    /// The next whole frame, or nil until more bytes come.
    mutating func next() throws(SPDYError) -> SPDYFrame? {
        guard buffer.count - offset >= 8 else { return nil }
        let head = buffer[offset..<offset + 8]
        let length = Int(head[offset + 5]) << 16 | Int(head[offset + 6]) << 8 | Int(head[offset + 7])
        guard buffer.count - offset >= 8 + length else { return nil }
        let flags = head[offset + 4]
        let body = Array(buffer[(offset + 8)..<(offset + 8 + length)])
        offset += 8 + length
        if offset > 1 << 16 {
            buffer.removeFirst(offset)
            offset = 0
        }
        let fin = flags & SPDYFrame.flagFin != 0
        guard head[head.startIndex] & 0x80 != 0 else {
            let streamID = Self.uint32(head, 0) & 0x7fff_ffff
            return .data(streamID: streamID, payload: body, fin: fin)
        }
        let version = UInt16(head[head.startIndex] & 0x7f) << 8 | UInt16(head[head.startIndex + 1])
        guard version == SPDYFrame.version else {
            throw SPDYError(description: "SPDY version \(version) is not served (only 3.1)")
        }
        let type = UInt16(head[head.startIndex + 2]) << 8 | UInt16(head[head.startIndex + 3])
        func need(_ count: Int) throws(SPDYError) {
            if body.count < count { throw SPDYError(description: "a SPDY frame of type \(type) is too short") }
        }
        switch type {
        case 1:
            try need(10)
            let headers = try inflater.headers(body[10...])
            return .synStream(streamID: Self.uint32(body, 0) & 0x7fff_ffff, headers: headers, fin: fin)
        case 2:
            try need(4)
            let headers = try inflater.headers(body[4...])
            return .synReply(streamID: Self.uint32(body, 0) & 0x7fff_ffff, headers: headers, fin: fin)
        case 3:
            try need(8)
            return .rstStream(streamID: Self.uint32(body, 0) & 0x7fff_ffff, status: Self.uint32(body, 4))
        case 4: return .settings
        case 6:
            try need(4)
            return .ping(Self.uint32(body, 0))
        case 7:
            try need(4)
            return .goAway(
                lastGoodStreamID: Self.uint32(body, 0) & 0x7fff_ffff, status: body.count >= 8 ? Self.uint32(body, 4) : 0
            )
        case 8:
            try need(4)
            let headers = try inflater.headers(body[4...])
            return .headers(streamID: Self.uint32(body, 0) & 0x7fff_ffff, headers: headers, fin: fin)
        case 9:
            try need(8)
            return .windowUpdate(
                streamID: Self.uint32(body, 0) & 0x7fff_ffff, delta: Self.uint32(body, 4) & 0x7fff_ffff)
        default: return .unknown(type: type)
        }
    }

    static func uint32(_ bytes: some RandomAccessCollection<UInt8>, _ at: Int) -> UInt32 {
        let i = bytes.index(bytes.startIndex, offsetBy: at)
        return UInt32(bytes[i]) << 24 | UInt32(bytes[bytes.index(i, offsetBy: 1)]) << 16
            | UInt32(bytes[bytes.index(i, offsetBy: 2)]) << 8 | UInt32(bytes[bytes.index(i, offsetBy: 3)])
    }
}

/// Frames as bytes: the server's side of the conversation.
enum SPDYFrameEncoder {
    static func control(_ type: UInt16, flags: UInt8 = 0, _ body: [UInt8]) -> [UInt8] {
        let n = body.count
        return [
            0x80, UInt8(SPDYFrame.version), UInt8(type >> 8), UInt8(type & 0xff), flags, UInt8(n >> 16),
            UInt8((n >> 8) & 0xff), UInt8(n & 0xff),
        ] + body
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    static func synReply(_ streamID: UInt32, headerBlock: [UInt8], fin: Bool = false) -> [UInt8] {
        control(2, flags: fin ? SPDYFrame.flagFin : 0, bigEndian(streamID & 0x7fff_ffff) + headerBlock)
    }

    static func rstStream(_ streamID: UInt32, status: UInt32) -> [UInt8] {
        control(3, bigEndian(streamID & 0x7fff_ffff) + bigEndian(status))
    }

    static func ping(_ id: UInt32) -> [UInt8] { control(6, bigEndian(id)) }

    static func goAway(lastGoodStreamID: UInt32, status: UInt32 = 0) -> [UInt8] {
        control(7, bigEndian(lastGoodStreamID & 0x7fff_ffff) + bigEndian(status))
    }

    static func data(_ streamID: UInt32, _ payload: some Collection<UInt8>, fin: Bool) -> [UInt8] {
        let n = payload.count
        return bigEndian(streamID & 0x7fff_ffff) + [
            fin ? SPDYFrame.flagFin : 0, UInt8(n >> 16), UInt8((n >> 8) & 0xff), UInt8(n & 0xff),
        ] + payload
    }
}

/// The receiving half of a connection's header compression: one zlib stream for every header block
/// the peer sends, primed with ``SPDYDictionary`` when zlib asks for it.
final class SPDYHeaderInflater {
    static let maximumBlock = 256 << 10
    private var stream = z_stream()
    private var ready = false

    init() { ready = berth_zlib_inflate_init(&stream) == Z_OK }
    deinit { if ready { inflateEnd(&stream) } }

    /// A header block: how many pairs, then each name and value with a 32-bit length. Names are
    /// lower-cased by the draft; several values of one name are separated by NUL bytes (kept as they are).
    func headers(_ compressed: ArraySlice<UInt8>) throws(SPDYError) -> [String: String] {
        let block = try inflate(compressed)
        var headers: [String: String] = [:]
        var at = 0
        func take(_ count: Int) throws(SPDYError) -> ArraySlice<UInt8> {
            guard count >= 0, at + count <= block.count else {
                throw SPDYError(description: "a SPDY header block is cut short")
            }
            defer { at += count }
            return block[at..<at + count]
        }
        func length() throws(SPDYError) -> Int { Int(SPDYFrameDecoder.uint32(try take(4), 0)) }
        guard !block.isEmpty else { return [:] }
        let count = try length()
        for _ in 0..<count {
            let name = String(decoding: try take(try length()), as: UTF8.self).lowercased()
            headers[name] = String(decoding: try take(try length()), as: UTF8.self)
        }
        return headers
    }

    private func inflate(_ compressed: ArraySlice<UInt8>) throws(SPDYError) -> [UInt8] {
        guard ready else { throw SPDYError(description: "zlib could not start") }
        guard !compressed.isEmpty else { return [] }
        var input = Array(compressed)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let failure: SPDYError? = input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = uInt(inputBuffer.count)
            while true {
                let (rc, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    var rc = CZlib.inflate(&stream, Z_SYNC_FLUSH)
                    if rc == Z_NEED_DICT {
                        rc = SPDYDictionary.bytes.withUnsafeBufferPointer {
                            inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count))
                        }
                        if rc == Z_OK { rc = CZlib.inflate(&stream, Z_SYNC_FLUSH) }
                    }
                    return (rc, out.count - Int(stream.avail_out))
                }
                output += chunk[0..<produced]
                // A small block may not inflate into a huge one (a zip bomb in a header).
                if output.count > Self.maximumBlock {
                    return SPDYError(description: "a SPDY header block inflates past \(Self.maximumBlock) bytes")
                }
                if rc == Z_BUF_ERROR && stream.avail_in == 0 { return nil }
                guard rc == Z_OK else {
                    return SPDYError(description: "a SPDY header block does not inflate (zlib \(rc))")
                }
                if stream.avail_in == 0 && stream.avail_out > 0 { return nil }
            }
        }
        stream.next_in = nil
        if let failure { throw failure }
        return output
    }
}

/// The sending half: header blocks compressed into one zlib stream primed with the dictionary, each
/// block flushed so the peer can read it whole.
final class SPDYHeaderDeflater {
    private var stream = z_stream()
    private var ready = false

    init() {
        ready = berth_zlib_deflate_init(&stream, Z_DEFAULT_COMPRESSION) == Z_OK
        if ready {
            _ = SPDYDictionary.bytes.withUnsafeBufferPointer {
                deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count))
            }
        }
    }
    deinit { if ready { deflateEnd(&stream) } }

    func block(_ headers: [String: String]) -> [UInt8] {
        var plain = SPDYFrameEncoder.bigEndian(UInt32(headers.count))
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            plain += SPDYFrameEncoder.bigEndian(UInt32(name.utf8.count)) + Array(name.lowercased().utf8)
            plain += SPDYFrameEncoder.bigEndian(UInt32(value.utf8.count)) + Array(value.utf8)
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        plain.withUnsafeMutableBufferPointer { input in
            stream.next_in = input.baseAddress
            stream.avail_in = uInt(input.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { out -> Int in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    _ = deflate(&stream, Z_SYNC_FLUSH)
                    return out.count - Int(stream.avail_out)
                }
                output += chunk[0..<produced]
            } while stream.avail_out == 0
        }
        stream.next_in = nil
        return output
    }
}
