/// Resource records of any owner name (RFC 1035 §3.2, RFC 2782 for SRV), for answers beyond the
/// embedded resolver's A and PTR to the question's own name: a cluster DNS answers CNAME, SRV with
/// their targets' addresses in the additional section, and SOA in the authority section of a negative
/// answer (what resolvers cache it by, RFC 2308).
public struct DNSRecord: Equatable, Sendable {
    public enum Data: Equatable, Sendable {
        case a(IPv4Address)
        /// 16 bytes (only passed on from an upstream's answer).
        case aaaa([UInt8])
        case cname(String)
        case ptr(String)
        case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
        case soa(
            primary: String, mailbox: String, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32,
            minimum: UInt32)
        case txt([String])

        public var type: UInt16 {
            switch self {
            case .a: DNSMessage.RecordType.a
            case .aaaa: DNSMessage.RecordType.aaaa
            case .cname: DNSMessage.RecordType.cname
            case .ptr: DNSMessage.RecordType.ptr
            case .srv: DNSMessage.RecordType.srv
            case .soa: DNSMessage.RecordType.soa
            case .txt: DNSMessage.RecordType.txt
            }
        }
    }

    /// The owner, without the trailing dot.
    public var name: String
    public var ttl: UInt32
    public var data: Data

    public init(name: String, ttl: UInt32, data: Data) {
        self.name = name
        self.ttl = ttl
        self.data = data
    }

    /// Appends the record to `message`, its owner name and the names inside CNAME, PTR and SOA data
    /// compressed against names already written (RFC 1035 §4.1.4); an SRV target is written whole, as
    /// RFC 2782 asks, but later names may point into it.
    func encode(into message: inout [UInt8], names: inout DNSNameCompressor) {
        names.write(name, into: &message)
        message += DNSMessage.be16(data.type) + DNSMessage.be16(DNSMessage.classIN) + DNSMessage.be32(ttl)
        let lengthAt = message.count
        message += [0, 0]
        switch data {
        case .a(let address):
            message += DNSMessage.be32(address.value)
        case .aaaa(let bytes):
            message += Array(bytes.prefix(16))
        case .cname(let target), .ptr(let target):
            names.write(target, into: &message)
        case .srv(let priority, let weight, let port, let target):
            message += DNSMessage.be16(priority) + DNSMessage.be16(weight) + DNSMessage.be16(port)
            names.write(target, into: &message, compress: false)
        case .soa(let primary, let mailbox, let serial, let refresh, let retry, let expire, let minimum):
            names.write(primary, into: &message)
            names.write(mailbox, into: &message)
            for value in [serial, refresh, retry, expire, minimum] { message += DNSMessage.be32(value) }
        case .txt(let strings):
            for string in strings {
                let bytes = Array(string.utf8.prefix(255))
                message.append(UInt8(bytes.count))
                message += bytes
            }
        }
        let length = DNSMessage.be16(UInt16(clamping: message.count - lengthAt - 2))
        message[lengthAt] = length[0]
        message[lengthAt + 1] = length[1]
    }
}

/// Where each name (and each of its suffixes) was written in a message, so a later name ending the
/// same way is a two-byte pointer there: a headless Service's SRV answer for three pods is 320 bytes
/// this way, 546 written out, over the 512 a client without EDNS takes.
struct DNSNameCompressor {
    /// Lower-cased dotted suffix → its offset in the message (pointers reach the first 16 KiB).
    private var offsets: [String: Int] = [:]

    /// Knows the question's name, written at offset 12 of every message.
    init(question: [UInt8]) {
        var labels: [String] = []
        var offset = 0
        var starts: [Int] = []
        while offset < question.count, question[offset] != 0, question[offset] & 0xC0 == 0 {
            let length = Int(question[offset])
            guard offset + 1 + length <= question.count else { break }
            starts.append(offset)
            labels.append(String(decoding: question[(offset + 1)..<(offset + 1 + length)], as: UTF8.self).lowercased())
            offset += 1 + length
        }
        for (index, start) in starts.enumerated() {
            offsets[labels[index...].joined(separator: ".")] = DNSMessage.headerSize + start
        }
    }

    mutating func write(_ dotted: String, into message: inout [UInt8], compress: Bool = true) {
        let labels = dotted.split(separator: ".").map { Array($0.utf8.prefix(63)) }
        let lowered = labels.map { String(decoding: $0, as: UTF8.self).lowercased() }
        for index in labels.indices {
            let suffix = lowered[index...].joined(separator: ".")
            if compress, let target = offsets[suffix] {
                message += [UInt8(0xC0 | (target >> 8)), UInt8(target & 0xFF)]
                return
            }
            if message.count < 0x3FFF, offsets[suffix] == nil { offsets[suffix] = message.count }
            message.append(UInt8(labels[index].count))
            message += labels[index]
        }
        message.append(0)
    }
}

extension DNSMessage.RecordType {
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let txt: UInt16 = 16
    public static let srv: UInt16 = 33
    public static let opt: UInt16 = 41
    public static let any: UInt16 = 255
}

extension DNSMessage {
    /// The largest UDP response a client without EDNS takes (RFC 1035 §4.2.1).
    public static let classicUDPLimit = 512

    /// A response to `query` with records in all three sections; over UDP (`udpLimit` set) one that does
    /// not fit is sent with only its header and question and TC set, so the client asks again over TCP.
    public static func response(
        to query: Query, code: ResponseCode, answers: [DNSRecord], authority: [DNSRecord] = [],
        additional: [DNSRecord] = [], authoritative: Bool, udpLimit: Int? = nil
    ) -> [UInt8] {
        // Counts past 65,535 cannot be said; such a message is over any limit and goes out truncated.
        var bytes = header(
            id: query.id, queryFlags: query.flags, code: code, authoritative: authoritative, questions: 1,
            answers: UInt16(clamping: answers.count), authority: UInt16(clamping: authority.count),
            additional: UInt16(clamping: additional.count))
        bytes += query.questionBytes
        var names = DNSNameCompressor(question: query.questionBytes)
        for record in answers + authority { record.encode(into: &bytes, names: &names) }
        let limit = min(udpLimit ?? Int(UInt16.max), Int(UInt16.max))
        let withoutAdditional = bytes.count
        for record in additional { record.encode(into: &bytes, names: &names) }
        if bytes.count <= limit { return bytes }
        // The additional section is a courtesy (SRV targets' addresses): without it the answer is
        // still whole, so it goes out without TC (RFC 2181 §9); only an answer that does not fit is
        // truncated, the client then asking over TCP.
        if withoutAdditional <= limit {
            var trimmed = Array(bytes[..<withoutAdditional])
            trimmed[10] = 0
            trimmed[11] = 0
            return trimmed
        }
        var truncated = header(
            id: query.id, queryFlags: query.flags, code: code, authoritative: authoritative, questions: 1,
            answers: 0)
        truncated[2] |= 0x02
        return truncated + query.questionBytes
    }

    /// The UDP payload size a query offers in its EDNS OPT record (RFC 6891), nil without one; read
    /// from the additional section after the first question (queries carry nothing else).
    public static func ednsPayloadSize(_ packet: [UInt8]) -> Int? { edns(packet)?.payloadSize }

    /// A query's EDNS OPT record: the UDP payload size it offers and its DO bit (DNSSEC records wanted).
    public static func edns(_ packet: [UInt8]) -> (payloadSize: Int, dnssecOK: Bool)? {
        guard packet.count >= headerSize else { return nil }
        let questions = Int(be16(packet, 4)), answers = Int(be16(packet, 6)), authority = Int(be16(packet, 8))
        let additional = Int(be16(packet, 10))
        guard questions == 1, answers == 0, authority == 0, additional >= 1 else { return nil }
        guard let (_, afterName) = try? readName(packet, at: headerSize) else { return nil }
        var offset = afterName + 4
        for _ in 0..<additional {
            guard let (_, end) = try? readName(packet, at: offset), end + 10 <= packet.count else { return nil }
            let type = be16(packet, end)
            if type == RecordType.opt {
                return (max(Int(be16(packet, end + 2)), classicUDPLimit), packet[end + 6] & 0x80 != 0)
            }
            offset = end + 10 + Int(be16(packet, end + 8))
        }
        return nil
    }

    /// The smallest TTL among a response's records (what a cache may keep it for), nil when it has none
    /// or cannot be read. Names are skipped with the same checks as a query's.
    public static func minimumTTL(_ packet: [UInt8]) -> UInt32? {
        guard var offset = recordsOffset(packet) else { return nil }
        let records = Int(be16(packet, 6)) + Int(be16(packet, 8)) + Int(be16(packet, 10))
        var minimum: UInt32?
        for _ in 0..<records {
            guard let (_, end) = try? readName(packet, at: offset), end + 10 <= packet.count else { return nil }
            let type = be16(packet, end)
            let ttl = UInt32(be16(packet, end + 4)) << 16 | UInt32(be16(packet, end + 6))
            if type != RecordType.opt { minimum = min(minimum ?? ttl, ttl) }
            offset = end + 10 + Int(be16(packet, end + 8))
            guard offset <= packet.count else { return nil }
        }
        return minimum
    }

    /// A response as a cache hands it on `elapsed` seconds later: every record's TTL less that (never
    /// below zero; OPT's field is flags, left alone). False when the packet cannot be walked.
    public static func ageTTLs(_ packet: inout [UInt8], by elapsed: UInt32) -> Bool {
        guard var offset = recordsOffset(packet) else { return false }
        let records = Int(be16(packet, 6)) + Int(be16(packet, 8)) + Int(be16(packet, 10))
        for _ in 0..<records {
            guard let (_, end) = try? readName(packet, at: offset), end + 10 <= packet.count else { return false }
            if be16(packet, end) != RecordType.opt {
                let ttl = UInt32(be16(packet, end + 4)) << 16 | UInt32(be16(packet, end + 6))
                let aged = ttl > elapsed ? ttl - elapsed : 0
                packet.replaceSubrange((end + 4)..<(end + 8), with: be32(aged))
            }
            offset = end + 10 + Int(be16(packet, end + 8))
            guard offset <= packet.count else { return false }
        }
        return true
    }

    static func be16(_ packet: [UInt8], _ at: Int) -> UInt16 { UInt16(packet[at]) << 8 | UInt16(packet[at + 1]) }

    /// Where a message's records begin (past its header and questions), nil when it cannot be read.
    static func recordsOffset(_ packet: [UInt8]) -> Int? {
        guard packet.count >= headerSize else { return nil }
        var offset = headerSize
        for _ in 0..<Int(be16(packet, 4)) {
            guard let (_, end) = try? readName(packet, at: offset) else { return nil }
            offset = end + 4
        }
        return offset
    }

    /// A name from dotted text (empty labels dropped, each cut to 63 bytes).
    static func encodeName(_ dotted: String) -> [UInt8] {
        encodeName(dotted.split(separator: ".").map { Array($0.utf8) })
    }
}

extension DNSMessage {
    /// Puts `id` in a message's header (a forwarder's own ID on the way up, the client's on the way back).
    public static func setID(_ packet: inout [UInt8], _ id: UInt16) {
        guard packet.count >= 2 else { return }
        packet[0] = UInt8(id >> 8)
        packet[1] = UInt8(id & 0xFF)
    }

    /// A query for `name` and `type` with recursion desired (what a forwarder sends upstream).
    public static func query(id: UInt16, name: String, type: UInt16, qclass: UInt16 = classIN) -> [UInt8] {
        be16(id) + [0x01, 0x00] + be16(1) + be16(0) + be16(0) + be16(0) + encodeName(name) + be16(type) + be16(qclass)
    }

    /// The answer section's A, AAAA and CNAME records of a response (others are skipped), names decompressed;
    /// empty when the packet cannot be read.
    public static func answerRecords(_ packet: [UInt8]) -> [DNSRecord] {
        guard var offset = recordsOffset(packet) else { return [] }
        let answers = Int(be16(packet, 6))
        var records: [DNSRecord] = []
        for _ in 0..<answers {
            guard let (labels, end) = try? readName(packet, at: offset), end + 10 <= packet.count else { break }
            let type = be16(packet, end)
            let ttl = UInt32(be16(packet, end + 4)) << 16 | UInt32(be16(packet, end + 6))
            let length = Int(be16(packet, end + 8))
            let start = end + 10
            guard start + length <= packet.count else { break }
            let name = labels.map(lowercasedASCII).joined(separator: ".")
            if type == RecordType.a, length == 4 {
                let value =
                    UInt32(packet[start]) << 24 | UInt32(packet[start + 1]) << 16 | UInt32(packet[start + 2]) << 8
                    | UInt32(packet[start + 3])
                records.append(DNSRecord(name: name, ttl: ttl, data: .a(IPv4Address(value))))
            } else if type == RecordType.aaaa, length == 16 {
                records.append(DNSRecord(name: name, ttl: ttl, data: .aaaa(Array(packet[start..<(start + 16)]))))
            } else if type == RecordType.cname, let (target, _) = try? readName(packet, at: start) {
                records.append(
                    DNSRecord(name: name, ttl: ttl, data: .cname(target.map(lowercasedASCII).joined(separator: "."))))
            }
            offset = start + length
        }
        return records
    }
}
