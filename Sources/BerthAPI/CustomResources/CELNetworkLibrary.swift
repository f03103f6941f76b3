import Foundation

/// An IP address as Kubernetes' CEL IP library takes it (Go's netip.ParseAddr, then no zone and no
/// IPv4-mapped IPv6 address). In Berth's JSON-valued CEL an address is its canonical text, so equal
/// addresses compare equal however they were written.
struct CELIPAddress: Equatable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    var bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Throws upstream's message, naming the text that is not an address.
    init(parsing text: String) throws {
        if text.contains("%") {
            throw CELError("IP address \"\(text)\" with zone value is not allowed")
        }
        guard let bytes = FieldChecks.ipAddress(text) else {
            throw CELError(
                "IP Address \"\(text)\" parse error during conversion from string: ParseAddr(\"\(text)\"): unable to parse IP"
            )
        }
        self.bytes = bytes
        if isIPv4Mapped { throw CELError("IPv4-mapped IPv6 address \"\(text)\" is not allowed") }
    }

    var family: Int { bytes.count == 4 ? 4 : 6 }
    private var isIPv4Mapped: Bool {
        bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
    }
    private var word0: UInt16 { UInt16(bytes[0]) << 8 | UInt16(bytes[1]) }

    // The address classes as Go's netip defines them (the IP library calls those).
    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
    var isLoopback: Bool { family == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1] }
    var isMulticast: Bool { family == 4 ? bytes[0] & 0xf0 == 0xe0 : bytes[0] == 0xff }
    var isLinkLocalMulticast: Bool {
        family == 4 ? bytes[0] == 224 && bytes[1] == 0 && bytes[2] == 0 : word0 & 0xff0f == 0xff02
    }
    var isLinkLocalUnicast: Bool { family == 4 ? bytes[0] == 169 && bytes[1] == 254 : word0 & 0xffc0 == 0xfe80 }
    /// Private addresses count as global unicast, as in Go.
    var isGlobalUnicast: Bool {
        if family == 4 && (isUnspecified || bytes.allSatisfy { $0 == 255 }) { return false }
        return !isUnspecified && !isLoopback && !isMulticast && !isLinkLocalUnicast
    }

    /// Go's Addr.String: dotted IPv4; IPv6 in lower-case hex with the first longest run of two or
    /// more zero groups written `::` (RFC 5952).
    var description: String {
        if family == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best = (start: -1, length: 0), i = 0
        while i < 8 {
            guard groups[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.length && j - i >= 2 { best = (i, j - i) }
            i = j
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    /// The first `bits` bits kept, the rest zero.
    func masked(_ bits: Int) -> CELIPAddress {
        CELIPAddress(
            bytes: bytes.enumerated().map { i, b in
                let keep = max(0, min(8, bits - 8 * i))
                return keep == 8 ? b : b & ~(UInt8(0xff) >> UInt8(keep))
            })
    }
}

/// A network in CIDR notation as Kubernetes' CEL CIDR library takes it (Go's netip.ParsePrefix: the
/// address may have bits set past the prefix, `masked()` clears them). Its CEL value is its text.
struct CELNetwork: Equatable, CustomStringConvertible {
    var address: CELIPAddress
    var prefixLength: Int

    init(address: CELIPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    init(parsing text: String) throws {
        func failure(_ why: String) -> CELError {
            CELError(
                "network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix(\"\(text)\"): \(why)"
            )
        }
        guard let slash = text.lastIndex(of: "/") else { throw failure("no '/'") }
        let bitsText = text[text.index(after: slash)...]
        let address: CELIPAddress
        do { address = try CELIPAddress(parsing: String(text[..<slash])) } catch let error as CELError {
            if error.description.hasPrefix("IPv4-mapped") {
                throw CELError("IPv4-mapped IPv6 address \"\(text)\" is not allowed")
            }
            throw failure("ParseAddr(\"\(text[..<slash])\"): unable to parse IP")
        }
        // Go refuses a sign or a leading zero in the length.
        guard let bits = Int(bitsText), bitsText.allSatisfy(\.isASCII), bitsText.first?.isNumber == true,
            bitsText == "0" || !bitsText.hasPrefix("0"), (0...(address.bytes.count * 8)).contains(bits)
        else { throw failure("bad bits after slash: \"\(bitsText)\"") }
        self.init(address: address, prefixLength: bits)
    }

    var description: String { "\(address)/\(prefixLength)" }
    var masked: CELNetwork { CELNetwork(address: address.masked(prefixLength), prefixLength: prefixLength) }

    func contains(_ ip: CELIPAddress) -> Bool {
        ip.family == address.family && ip.masked(prefixLength) == address.masked(prefixLength)
    }

    /// Whether every address of `other` lies within this network.
    func contains(_ other: CELNetwork) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }
}

extension CELEvaluator {
    /// Kubernetes' IP and CIDR libraries: `ip(s)`, `isIP(s)`, `ip.isCanonical(s)`, and on an address
    /// family, isUnspecified, isLoopback, isLinkLocalMulticast, isLinkLocalUnicast, isGlobalUnicast;
    /// `cidr(s)`, `isCIDR(s)`, and on a network containsIP, containsCIDR (an address or network, or its
    /// text), ip, masked, prefixLength. nil when `name` is none of them.
    static func networkLibrary(_ name: String, target: JSON?, args: [JSON]) throws -> JSON? {
        func text(_ v: JSON) throws -> String {
            guard let s = v.string else { throw CELError("no such overload: \(name)(\(typeName(v)))") }
            return s
        }
        switch (name, target, args.count) {
        case ("ip", nil, 1): return .string(try CELIPAddress(parsing: try text(args[0])).description)
        case ("isIP", nil, 1): return .bool((try? CELIPAddress(parsing: try text(args[0]))) != nil)
        case ("ip.isCanonical", nil, 1):
            let s = try text(args[0])
            return .bool(try CELIPAddress(parsing: s).description == s)
        case ("cidr", nil, 1): return .string(try CELNetwork(parsing: try text(args[0])).description)
        case ("isCIDR", nil, 1): return .bool((try? CELNetwork(parsing: try text(args[0]))) != nil)
        default: break
        }
        guard let target, args.count <= 1 else { return nil }
        let addressAccessors = [
            "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast", "isGlobalUnicast",
        ]
        if addressAccessors.contains(name), args.isEmpty {
            let ip = try CELIPAddress(parsing: try text(target))
            switch name {
            case "family": return .int(Int64(ip.family))
            case "isUnspecified": return .bool(ip.isUnspecified)
            case "isLoopback": return .bool(ip.isLoopback)
            case "isLinkLocalMulticast": return .bool(ip.isLinkLocalMulticast)
            case "isLinkLocalUnicast": return .bool(ip.isLinkLocalUnicast)
            default: return .bool(ip.isGlobalUnicast)
            }
        }
        switch (name, args.count) {
        case ("containsIP", 1):
            return .bool(
                try CELNetwork(parsing: try text(target)).contains(try CELIPAddress(parsing: try text(args[0]))))
        case ("containsCIDR", 1):
            return .bool(try CELNetwork(parsing: try text(target)).contains(try CELNetwork(parsing: try text(args[0]))))
        case ("ip", 0): return .string(try CELNetwork(parsing: try text(target)).address.description)
        case ("masked", 0): return .string(try CELNetwork(parsing: try text(target)).masked.description)
        case ("prefixLength", 0): return .int(Int64(try CELNetwork(parsing: try text(target)).prefixLength))
        default: return nil
        }
    }
}
