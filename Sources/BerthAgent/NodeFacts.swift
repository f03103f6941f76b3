#if canImport(Glibc)
import Glibc
#endif
import BerthKube
import BerthOS

/// What a Node reports about its machine, read from the kernel: CPUs, memory, the disk under the
/// agent's root, addresses, and the identity fields of nodeInfo.
struct NodeFacts: Sendable {
    var cpus: Int
    var memoryBytes: Int64
    var storageBytes: Int64
    var hostname: String
    var internalIP: String
    var machineID: String
    var bootID: String
    var kernelVersion: String
    var osImage: String

    static func read(rootDirectory: String, nodeIP: String?) -> NodeFacts {
        var fs = statvfs()
        let storage = statvfs(rootDirectory, &fs) == 0 ? Int64(fs.f_blocks) * Int64(fs.f_frsize) : 0
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return NodeFacts(
            cpus: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            memoryBytes: memoryTotal(),
            storageBytes: storage,
            hostname: firstLine("/proc/sys/kernel/hostname") ?? "localhost",
            internalIP: address(nodeIP: nodeIP),
            machineID: firstLine("/etc/machine-id") ?? "",
            bootID: firstLine("/proc/sys/kernel/random/boot_id") ?? "",
            kernelVersion: release,
            osImage: osRelease() ?? "Linux")
    }

    /// The InternalIP a Node reports: `--node-ip`, else the first non-loopback IPv4 address.
    static func address(nodeIP: String?) -> String { nodeIP ?? firstIPv4Address() ?? "127.0.0.1" }

    /// MemTotal from /proc/meminfo, in bytes.
    static func memoryTotal() -> Int64 { meminfo("MemTotal") }

    /// MemAvailable from /proc/meminfo, in bytes (what eviction thresholds compare with).
    static func memoryAvailable() -> Int64 { meminfo("MemAvailable") }

    /// One `/proc/meminfo` field (kB there), in bytes; 0 when absent.
    static func meminfo(_ field: String) -> Int64 {
        let text = (try? FileSystem.readString("/proc/meminfo")) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kib = Int64(fields[1]) { return kib * 1024 }
        }
        return 0
    }

    static func firstLine(_ path: String) -> String? {
        guard let text = try? FileSystem.readString(path) else { return nil }
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        return line.isEmpty ? nil : line
    }

    static func osRelease() -> String? {
        guard let text = try? FileSystem.readString("/etc/os-release") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst("PRETTY_NAME=".count)).trimmingQuotes
        }
        return nil
    }

    /// The first IPv4 address of an interface that is up and not loopback (the kubelet's default
    /// node IP when none is given).
    static func firstIPv4Address() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(entry.pointee.ifa_flags)
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let converted = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                var raw = inet.pointee.sin_addr
                return inet_ntop(AF_INET, &raw, &text, socklen_t(INET_ADDRSTRLEN)) != nil
            }
            if converted {
                return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingQuotes: String {
        var text = Substring(self)
        if text.hasPrefix("\"") { text = text.dropFirst() }
        if text.hasSuffix("\"") { text = text.dropLast() }
        return String(text)
    }
}
