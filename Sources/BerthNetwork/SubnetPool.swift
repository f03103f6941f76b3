import BerthOS

/// Where automatic subnets of new networks come from, in docker's manner (`default-address-pools`):
/// a base range cut into equal subnets, the first one that overlaps nothing in use is taken.
///
/// The default avoids docker's 172.17.0.0/16 and podman's 10.88.0.0/16 (and the default `bridge`
/// network's 10.89.0.0/16): 10.90.0.0/15 in /24s, 512 networks.
public struct SubnetPool: Sendable, Equatable, CustomStringConvertible {
    public var base: IPv4Subnet
    public var size: Int

    public init(base: IPv4Subnet, size: Int) {
        precondition(size >= base.prefixLength && size <= 30, "a pool's subnets must fit in its base")
        self.base = base
        self.size = size
    }

    public static let `default` = SubnetPool(base: IPv4Subnet("10.90.0.0/15")!, size: 24)

    public var description: String { "\(base) in /\(size)s" }

    /// The first subnet of the pool that overlaps none of `used` (other networks' subnets and the host's
    /// routes), or nil when the pool is exhausted.
    public func allocate(avoiding used: [IPv4Subnet]) -> IPv4Subnet? {
        let count = UInt64(1) << UInt64(size - base.prefixLength)
        let step = UInt64(1) << UInt64(32 - size)
        var index: UInt64 = 0
        while index < count {
            let candidate = IPv4Subnet(
                network: IPv4Address(UInt32(UInt64(base.network.value) + index * step)), prefixLength: size)
            if let blocker = used.first(where: { $0.overlaps(candidate) }) {
                // Skip past the whole blocking subnet when it is larger than one candidate.
                let blockerEnd = UInt64(blocker.last.value) + 1
                let next = (blockerEnd - UInt64(base.network.value) + step - 1) / step
                index = max(index + 1, next)
                continue
            }
            return candidate
        }
        return nil
    }
}

/// The IPv4 routes of the host (`/proc/net/route`): a subnet already routed somewhere (a VPN, another
/// engine's bridge, the LAN) must not be given to a new network, or its traffic would go astray.
public enum HostRoutes {
    /// Destinations of every route but the default ones.
    public static func current() -> [IPv4Subnet] {
        guard let text = try? FileSystem.readString("/proc/net/route") else { return [] }
        return parse(text)
    }

    /// Parses the kernel's table: hex fields holding network-order words, printed in host byte order.
    public static func parse(_ text: String) -> [IPv4Subnet] {
        var result: [IPv4Subnet] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16),
                let mask = UInt32(fields[7], radix: 16)
            else { continue }
            // The kernel prints each network-order word as a host-order number: reading it back as
            // big-endian bytes gives the address on any host.
            let dest = UInt32(bigEndian: destination)
            let m = UInt32(bigEndian: mask)
            guard m != 0 else { continue }
            let length = m.nonzeroBitCount
            result.append(IPv4Subnet(network: IPv4Address(dest), prefixLength: length))
        }
        return result
    }
}
