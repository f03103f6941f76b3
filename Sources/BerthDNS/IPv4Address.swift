/// An IPv4 address as a number, for subnet arithmetic (networks here are IPv4, as docker's default).
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Dotted quad, exactly four decimal parts without leading zeros (`010.0.0.1` is ambiguous: octal in
    /// inet_aton, decimal elsewhere; refused like Go's net.ParseIP does).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let byte = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(byte)
        }
        self.value = value
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
}
