#if canImport(Glibc)
import Glibc
#endif

/// A network as `docker network ls/inspect` shows it.
public struct Network: Codable, Sendable, Equatable {
    public var name: String
    /// 64 hex digits; commands accept a unique prefix.
    public var id: String
    /// `bridge` for Berth's networks, `null` for `none`, `host` for `host`, and the first plugin's type for
    /// a network from a CNI configuration directory.
    public var driver: String
    public var scope: String
    public var subnet: String?
    public var gateway: String?
    /// The host's bridge interface (`berth0`, `br-<12 hex of the id>`).
    public var bridge: String?
    /// No outbound NAT and no default route: containers reach each other and nothing else.
    public var `internal`: Bool
    public var labels: [String: String]
    /// RFC 3339 with nanoseconds, as docker prints `Created`.
    public var created: String
    /// The CNI configuration file of a network found in a configuration directory; nil for Berth's own.
    public var configFile: String?
    /// The interfaces' MTU (nil: the kernel's 1500), smaller on a pod network whose traffic to other
    /// nodes is wrapped in VXLAN.
    public var mtu: Int?
    /// A node's pod network: the whole cluster's pod range, which its traffic reaches unmasqueraded
    /// (other nodes' pods see the pod's own address) and which may reach its containers from outside.
    public var clusterCIDR: String?

    public init(
        name: String, id: String, driver: String, scope: String = "local", subnet: String? = nil,
        gateway: String? = nil, bridge: String? = nil, internal: Bool = false, labels: [String: String] = [:],
        created: String, configFile: String? = nil, mtu: Int? = nil, clusterCIDR: String? = nil
    ) {
        self.name = name
        self.id = id
        self.driver = driver
        self.scope = scope
        self.subnet = subnet
        self.gateway = gateway
        self.bridge = bridge
        self.internal = `internal`
        self.labels = labels
        self.created = created
        self.configFile = configFile
        self.mtu = mtu
        self.clusterCIDR = clusterCIDR
    }

    /// The twelve digits `docker network ls` prints.
    public var shortID: String { String(id.prefix(12)) }

    /// Whether containers can be attached through CNI (`none` and `host` are not CNI networks).
    public var isAttachable: Bool { driver != "null" && driver != "host" }

    /// Networks Berth always has, as docker does.
    public static let predefinedNames: Set<String> = ["bridge", "none", "host"]

    /// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. (The length limit keeps cache file names
    /// and interface-related names reasonable.)
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 128 else { return false }
        func alphanumeric(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
        }
        return alphanumeric(first)
            && name.unicodeScalars.allSatisfy { alphanumeric($0) || $0 == "_" || $0 == "." || $0 == "-" }
    }
}

enum Identifiers {
    /// 32 random bytes in hex, docker's network and container ID format.
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in hex64(generator.next()) }.joined()
    }

    /// A stable 64-hex ID for something that has no stored ID (a network from a CNI config file):
    /// FNV-1a over the text with four different seeds. Not cryptographic; only stable and well spread.
    static func stable(_ text: String) -> String {
        (0..<4).map { (seed: UInt64) -> String in
            var hash: UInt64 = 0xcbf29ce484222325 ^ (seed &* 0x9e3779b97f4a7c15)
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100000001b3
            }
            return hex64(hash)
        }.joined()
    }

    static func hex64(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// A time in RFC 3339 with nanoseconds, UTC (`2026-12-03T11:52:04.123456789Z`).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(seconds: now.tv_sec, nanoseconds: now.tv_nsec)
    }

    static func timestamp(seconds: Int, nanoseconds: Int = 0) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(nanoseconds), 9))Z"
    }
}
