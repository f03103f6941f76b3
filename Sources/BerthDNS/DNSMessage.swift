/// The part of the DNS wire format (RFC 1035 §4) the embedded resolver needs: the header and first
/// question of a query, and responses built from them. Everything read comes from a container, so the
/// parser is written for hostile input: every length is checked before it is used, compression
/// pointers may only point back before the part they were reached from (so they cannot loop) and at
/// most 64 of them are followed, and a
/// name never grows past 255 bytes. A packet it cannot read is an error value, never a trap.
public enum DNSMessage {
    public static let headerSize = 12

    /// Record types the resolver answers itself.
    public enum RecordType {
        public static let a: UInt16 = 1
        public static let ptr: UInt16 = 12
        public static let aaaa: UInt16 = 28
    }

    public static let classIN: UInt16 = 1

    /// Response codes (RFC 1035 §4.1.1).
    public enum ResponseCode: UInt8, Sendable {
        case noError = 0
        case formatError = 1
        case serverFailure = 2
        case nameError = 3
        case notImplemented = 4
        case refused = 5
    }

    /// Why a packet could not be read.
    public enum ParseError: Error, Equatable, Sendable {
        /// Shorter than what its header or a length byte promises.
        case truncated
        /// A compression pointer that does not point before the part of the name it was reached from
        /// (what a loop needs), or a chain of more than 64.
        case badPointer
        /// A name over 255 bytes, or a label type other than a length (0b00) or a pointer (0b11).
        case badName
        /// A response, or a query with no question.
        case notAQuery
    }

    /// A query's header and first question. `questionBytes` is the question exactly as the client sent it
    /// (name uncompressed, type, class), so a response can echo it and point at its name.
    public struct Query: Equatable, Sendable {
        public var id: UInt16
        /// The header's second 16 bits (QR, opcode, AA, TC, RD, RA, Z, rcode).
        public var flags: UInt16
        /// Lower-case labels, without the root: ["web", "example", "com"].
        public var labels: [String]
        public var type: UInt16
        public var qclass: UInt16
        public var questionBytes: [UInt8]

        public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
        public var recursionDesired: Bool { flags & 0x0100 != 0 }
        /// The name without a trailing dot, lower-case: "web.example.com" ("" for the root).
        public var name: String { labels.joined(separator: ".") }
    }

    /// One answer record the resolver makes: A (4 bytes of address) or PTR (a name).
    public enum Answer: Equatable, Sendable {
        case a(IPv4Address)
        case ptr(String)
    }

    /// The 16-bit ID of any message with a header (what the forwarder matches replies by).
    public static func id(of packet: [UInt8]) -> UInt16? {
        packet.count >= headerSize ? UInt16(packet[0]) << 8 | UInt16(packet[1]) : nil
    }

    /// Reads the header and the first question of a query.
    public static func parseQuery(_ packet: [UInt8]) throws(ParseError) -> Query {
        guard packet.count >= headerSize else { throw .truncated }
        let flags = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let questions = UInt16(packet[4]) << 8 | UInt16(packet[5])
        guard flags & 0x8000 == 0, questions >= 1 else { throw .notAQuery }
        let (rawLabels, end) = try readName(packet, at: headerSize)
        guard end + 4 <= packet.count else { throw .truncated }
        let type = UInt16(packet[end]) << 8 | UInt16(packet[end + 1])
        let qclass = UInt16(packet[end + 2]) << 8 | UInt16(packet[end + 3])
        // The echoed question is written uncompressed: a pointer in it would point into the query.
        var question = encodeName(rawLabels)
        question += packet[end..<(end + 4)]
        return Query(
            id: UInt16(packet[0]) << 8 | UInt16(packet[1]), flags: flags,
            labels: rawLabels.map(lowercasedASCII), type: type, qclass: qclass, questionBytes: question)
    }

    /// Reads a (possibly compressed) name starting at `start`; returns its labels' bytes as sent and the
    /// offset just after the name where it starts (after the first pointer, if any).
    static func readName(_ packet: [UInt8], at start: Int) throws(ParseError) -> ([[UInt8]], Int) {
        var labels: [[UInt8]] = []
        var offset = start
        var end: Int?
        var hops = 0
        var length = 0
        // Every pointer must point before where the name (or the part reached by the last pointer)
        // began: the targets strictly decrease, so no packet can make the reader go round.
        var limit = start
        while true {
            guard offset < packet.count else { throw .truncated }
            let byte = packet[offset]
            switch byte & 0xC0 {
            case 0xC0:
                guard offset + 1 < packet.count else { throw .truncated }
                let target = Int(byte & 0x3F) << 8 | Int(packet[offset + 1])
                guard target < limit, hops < 64 else { throw .badPointer }
                hops += 1
                if end == nil { end = offset + 2 }
                offset = target
                limit = target
            case 0x00:
                let count = Int(byte)
                if count == 0 { return (labels, end ?? offset + 1) }
                guard offset + 1 + count <= packet.count else { throw .truncated }
                length += count + 1
                guard length <= 255 else { throw .badName }
                labels.append(Array(packet[(offset + 1)...(offset + count)]))
                offset += 1 + count
            default:
                throw .badName
            }
        }
    }

    /// The wire form of a name: length-prefixed labels and the root's zero.
    static func encodeName(_ labels: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for label in labels {
            let label = label.prefix(63)
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
        return bytes
    }

    /// A response to `query`: its ID and question, RD copied, RA set (the resolver recurses through its
    /// upstreams), AA set for names it owns. Each answer's name is a pointer to the question's (offset 12).
    public static func response(
        to query: Query, code: ResponseCode, answers: [Answer] = [], ttl: UInt32 = 600,
        authoritative: Bool = false
    ) -> [UInt8] {
        var bytes = header(
            id: query.id, queryFlags: query.flags, code: code, authoritative: authoritative,
            questions: 1, answers: UInt16(answers.count))
        bytes += query.questionBytes
        for answer in answers {
            bytes += [0xC0, 0x0C]
            let type: UInt16, data: [UInt8]
            switch answer {
            case .a(let address):
                type = RecordType.a
                data = [
                    UInt8(address.value >> 24), UInt8(address.value >> 16 & 0xFF), UInt8(address.value >> 8 & 0xFF),
                    UInt8(address.value & 0xFF),
                ]
            case .ptr(let name):
                type = RecordType.ptr
                data = encodeName(name.split(separator: ".").map { Array($0.utf8) })
            }
            bytes += be16(type) + be16(classIN) + be32(ttl) + be16(UInt16(data.count)) + data
        }
        return bytes
    }

    /// An answer with only a header, for a packet whose question could not be read (FORMERR with its ID,
    /// as RFC 1035 asks), or nil when not even the header is there (such packets are dropped).
    public static func headerOnlyResponse(to packet: [UInt8], code: ResponseCode) -> [UInt8]? {
        guard packet.count >= headerSize, packet[2] & 0x80 == 0 else { return nil }
        let flags = UInt16(packet[2]) << 8 | UInt16(packet[3])
        return header(
            id: UInt16(packet[0]) << 8 | UInt16(packet[1]), queryFlags: flags, code: code, authoritative: false,
            questions: 0, answers: 0)
    }

    static func header(
        id: UInt16, queryFlags: UInt16, code: ResponseCode, authoritative: Bool, questions: UInt16,
        answers: UInt16, authority: UInt16 = 0, additional: UInt16 = 0
    ) -> [UInt8] {
        // QR, the query's opcode and RD; RA; AA when ours.
        var flags: UInt16 = 0x8000 | (queryFlags & 0x7900) | 0x0080 | UInt16(code.rawValue)
        if authoritative { flags |= 0x0400 }
        return be16(id) + be16(flags) + be16(questions) + be16(answers) + be16(authority) + be16(additional)
    }

    /// The address a reverse name stands for: ["4", "3", "2", "1", "in-addr", "arpa"] → 1.2.3.4.
    public static func reverseAddress(_ labels: [String]) -> IPv4Address? {
        guard labels.count == 6, labels[4] == "in-addr", labels[5] == "arpa" else { return nil }
        return IPv4Address(labels[0..<4].reversed().joined(separator: "."))
    }

    /// Names are compared ASCII case-insensitively (RFC 4343); other bytes are left alone.
    public static func lowercasedASCII(_ label: some Sequence<UInt8>) -> String {
        String(decoding: label.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// A message as DNS over TCP carries it: a 2-byte length first (RFC 1035 §4.2.2).
    public static func lengthPrefixed(_ message: [UInt8]) -> [UInt8] {
        be16(UInt16(truncatingIfNeeded: message.count)) + message
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}
