import Testing
@testable import BerthDNS
@testable import BerthNetwork

/// A query as a stub resolver sends it: ID, RD, one question.
func dnsQuery(_ name: String, type: UInt16 = DNSMessage.RecordType.a, id: UInt16 = 0xBEEF) -> [UInt8] {
    var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
    bytes += DNSMessage.encodeName(name.split(separator: ".").map { Array($0.utf8) })
    bytes += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    return bytes
}

@Suite struct DNSMessageTests {
    @Test func aQueryIsReadWithItsIDTypeAndLowerCaseName() throws {
        let query = try DNSMessage.parseQuery(dnsQuery("Web.Example.COM", type: DNSMessage.RecordType.aaaa))
        #expect(query.id == 0xBEEF)
        #expect(query.name == "web.example.com")
        #expect(query.type == DNSMessage.RecordType.aaaa)
        #expect(query.qclass == DNSMessage.classIN)
        #expect(query.recursionDesired)
        // The question is echoed exactly as sent, case included.
        #expect(query.questionBytes == Array(dnsQuery("Web.Example.COM", type: DNSMessage.RecordType.aaaa)[12...]))
    }

    @Test func aResponseCarriesTheIDTheQuestionAndAnswersPointingAtIt() throws {
        let query = try DNSMessage.parseQuery(dnsQuery("server"))
        let reply = DNSMessage.response(
            to: query, code: .noError, answers: [.a(IPv4Address("10.89.1.2")!)], ttl: 600, authoritative: true)
        #expect(DNSMessage.id(of: reply) == 0xBEEF)
        #expect(reply[2] & 0x80 != 0)  // QR
        #expect(reply[2] & 0x04 != 0)  // AA
        #expect(reply[2] & 0x01 != 0)  // RD copied
        #expect(reply[3] == 0x80)  // RA, NOERROR
        #expect(Array(reply[4..<8]) == [0, 1, 0, 1])
        let answer = Array(reply[(12 + query.questionBytes.count)...])
        #expect(answer == [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4, 10, 89, 1, 2])
        // A compressed answer name reads back as the question's name.
        #expect(
            try DNSMessage.readName(reply, at: 12 + query.questionBytes.count).0.map {
                String(decoding: $0, as: UTF8.self)
            } == ["server"])
    }

    @Test func ptrAnswersAndReverseNames() throws {
        let query = try DNSMessage.parseQuery(dnsQuery("2.1.89.10.in-addr.arpa", type: DNSMessage.RecordType.ptr))
        #expect(DNSMessage.reverseAddress(query.labels) == IPv4Address("10.89.1.2"))
        #expect(DNSMessage.reverseAddress(["1", "2", "in-addr", "arpa"]) == nil)
        let reply = DNSMessage.response(to: query, code: .noError, answers: [.ptr("web.mynet")])
        #expect(Array(reply.suffix(13)) == [0, 11, 3, 119, 101, 98, 5, 109, 121, 110, 101, 116, 0])
        let (labels, _) = try DNSMessage.readName(reply, at: reply.count - 11)
        #expect(labels.map { String(decoding: $0, as: UTF8.self) } == ["web", "mynet"])
    }

    @Test func servfailKeepsTheQuestion() throws {
        let query = try DNSMessage.parseQuery(dnsQuery("example.org"))
        let reply = DNSMessage.response(to: query, code: .serverFailure)
        #expect(reply[3] & 0x0F == 2)
        #expect(Array(reply[12...]) == query.questionBytes)
    }

    @Test func truncatedPacketsAreErrorsNotTraps() {
        let full = dnsQuery("server.example")
        for length in 0..<full.count {
            #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.parseQuery(Array(full.prefix(length))) }
        }
        #expect(DNSMessage.headerOnlyResponse(to: Array(full.prefix(5)), code: .formatError) == nil)
        let formerr = DNSMessage.headerOnlyResponse(to: Array(full.prefix(14)), code: .formatError)
        #expect(formerr.map { Array($0[0..<4]) } == [0xBE, 0xEF, 0x81, 0x81])
    }

    @Test func compressionPointersCannotLoop() throws {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // Points at itself.
        #expect(throws: DNSMessage.ParseError.badPointer) {
            try DNSMessage.parseQuery(header + [0xC0, 12, 0, 1, 0, 1])
        }
        // Points forward (into a later pointer back to it: a two-step loop).
        #expect(throws: DNSMessage.ParseError.badPointer) {
            try DNSMessage.parseQuery(header + [0xC0, 14, 0xC0, 12, 0, 1, 0, 1])
        }
        // A label, then a pointer back to that label: a loop through content.
        #expect(throws: DNSMessage.ParseError.badPointer) {
            try DNSMessage.parseQuery(header + [1, 97, 0xC0, 12, 0, 1, 0, 1])
        }
        // A pointer past the end.
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage.parseQuery(header + [0xFF, 0xFF]) }
        // A backward pointer to before the name is how compression works: "b" then "a" found at 2.
        #expect(try DNSMessage.readName([0, 0, 1, 97, 0, 1, 98, 0xC0, 2], at: 5).0 == [[98], [97]])
    }

    @Test func badLabelsAndOverlongNamesAreRefused() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // 0b01 and 0b10 label types (EDNS0 extended labels, reserved).
        #expect(throws: DNSMessage.ParseError.badName) { try DNSMessage.parseQuery(header + [0x41, 0, 0, 1, 0, 1]) }
        #expect(throws: DNSMessage.ParseError.badName) { try DNSMessage.parseQuery(header + [0x80, 0, 0, 1, 0, 1]) }
        // Five 63-byte labels: 320 bytes, over the 255 limit.
        var long: [UInt8] = []
        for _ in 0..<5 { long += [63] + [UInt8](repeating: 97, count: 63) }
        #expect(throws: DNSMessage.ParseError.badName) { try DNSMessage.parseQuery(header + long + [0, 0, 1, 0, 1]) }
    }

    @Test func responsesAndEmptyQueriesAreNotQueries() {
        var response = dnsQuery("x")
        response[2] |= 0x80
        #expect(throws: DNSMessage.ParseError.notAQuery) { try DNSMessage.parseQuery(response) }
        var none = dnsQuery("x")
        none[5] = 0
        #expect(throws: DNSMessage.ParseError.notAQuery) { try DNSMessage.parseQuery(none) }
        #expect(DNSMessage.headerOnlyResponse(to: response, code: .formatError) == nil)
    }

    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<80, using: &generator)
            var packet = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if packet.count > 5 { packet[2] &= 0x7F; packet[5] = 1 }
            _ = try? DNSMessage.parseQuery(packet)
            _ = DNSMessage.headerOnlyResponse(to: packet, code: .formatError)
        }
    }
}

/// Responses with records of any name: compressed so a headless Service's SRV answer fits 512 bytes,
/// and the additional section dropped (without TC) before the answer is ever truncated.
@Suite struct DNSRecordEncodingTests {
    let service = "_http._tcp.echo-headless.default.svc.cluster.local"

    func srvAnswer(pods: Int, udpLimit: Int = DNSMessage.classicUDPLimit) throws -> [UInt8] {
        let query = try DNSMessage.parseQuery(dnsQuery(service.uppercased(), type: DNSMessage.RecordType.srv))
        let targets = (0..<pods).map { "10-42-\($0)-2.echo-headless.default.svc.cluster.local" }
        return DNSMessage.response(
            to: query, code: .noError,
            answers: targets.map {
                DNSRecord(name: service, ttl: 5, data: .srv(priority: 0, weight: 100, port: 8080, target: $0))
            },
            additional: targets.enumerated().map {
                DNSRecord(name: $1, ttl: 5, data: .a(IPv4Address(UInt32(0x0A2A_0002) | UInt32($0) << 8)))
            }, authoritative: true, udpLimit: udpLimit)
    }

    @Test func namesAreCompressedButSRVTargetsAreWrittenWhole() throws {
        let reply = try srvAnswer(pods: 3)
        #expect(reply.count < 400, "\(reply.count) bytes")
        #expect(reply[2] & 0x02 == 0)  // not truncated
        #expect(DNSMessage.be16(reply, 6) == 3 && DNSMessage.be16(reply, 10) == 3)
        // Every owner name decompresses to the question's (its case as asked) or a target; the targets
        // themselves are plain labels (RFC 2782), so each appears in full once.
        let text = String(decoding: reply, as: UTF8.self)
        for index in 0..<3 { #expect(text.contains("10-42-\(index)-2\u{0D}echo-headless")) }
        var offset = try #require(DNSMessage.recordsOffset(reply))
        var owners: [String] = []
        for _ in 0..<6 {
            let (labels, end) = try DNSMessage.readName(reply, at: offset)
            owners.append(labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").lowercased())
            offset = end + 10 + Int(DNSMessage.be16(reply, end + 8))
        }
        #expect(offset == reply.count)
        #expect(Array(owners.prefix(3)) == Array(repeating: service, count: 3))
        #expect(owners[3] == "10-42-0-2.echo-headless.default.svc.cluster.local")
    }

    @Test func theAdditionalSectionGoesBeforeTheAnswerIsTruncated() throws {
        // Six pods: the answers fit 512 bytes, their addresses no longer do.
        let trimmed = try srvAnswer(pods: 6)
        #expect(trimmed.count <= 512 && trimmed[2] & 0x02 == 0)
        #expect(DNSMessage.be16(trimmed, 6) == 6 && DNSMessage.be16(trimmed, 10) == 0)
        // Far more: the answer itself does not fit, so TC with the question only.
        let truncated = try srvAnswer(pods: 40)
        #expect(truncated[2] & 0x02 != 0 && DNSMessage.be16(truncated, 6) == 0)
        // With room (TCP, EDNS) everything goes.
        #expect(try DNSMessage.be16(srvAnswer(pods: 40, udpLimit: 65_535), 10) == 40)
    }
}
