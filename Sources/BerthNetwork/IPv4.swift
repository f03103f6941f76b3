#if canImport(Glibc)
import Glibc
#endif

// IPv4Address lives in BerthDNS (the embedded resolver's Foundation-free module, which the monitor links
// without the rest of BerthNetwork) and is re-exported here, so every user of BerthNetwork sees it as before.
@_exported import BerthDNS

/// An IPv4 subnet in CIDR notation.
public struct IPv4Subnet: Sendable, Hashable, CustomStringConvertible {
    public var network: IPv4Address
    public var prefixLength: Int

    public init(network: IPv4Address, prefixLength: Int) {
        self.network = IPv4Address(network.value & Self.mask(prefixLength))
        self.prefixLength = prefixLength
    }

    /// `10.89.0.0/16`. With `strict`, host bits must be zero (`10.89.0.1/16` is refused, as docker does).
    public init?(_ text: some StringProtocol, strict: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let length = Int(parts[1]), (0...32).contains(length)
        else { return nil }
        if strict && address.value & ~Self.mask(length) != 0 { return nil }
        self.init(network: address, prefixLength: length)
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : UInt32.max << (32 - length) }

    public var mask: UInt32 { Self.mask(prefixLength) }
    public var first: IPv4Address { network }
    public var last: IPv4Address { IPv4Address(network.value | ~mask) }
    public var description: String { "\(network)/\(prefixLength)" }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        contains(other.network) || other.contains(network)
    }

    /// The `n`th address (1 is docker's default gateway).
    public func address(_ n: UInt32) -> IPv4Address { IPv4Address(network.value &+ n) }
}

/// Whether `text` is an IPv6 address (inet_pton's grammar).
func isIPv6Address(_ text: String) -> Bool {
    var buffer = in6_addr()
    return inet_pton(AF_INET6, text, &buffer) == 1
}
