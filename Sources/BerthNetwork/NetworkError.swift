import BerthOS

/// Everything the network layer can fail with. Each case says what the user asked for and, where a
/// system call or a plugin failed underneath, carries that cause rather than a flattened string.
public enum NetworkError: Error, CustomStringConvertible, Sendable {
    /// A system call failed (lock file, bind for a port check, reading a config directory …).
    case system(SystemCallError)
    /// A network configuration (conflist/conf, a stored definition, a result) could not be read.
    case invalidConfiguration(source: String, reason: String)
    /// A CNI plugin failed; see ``CNIPluginError``.
    case plugin(CNIPluginError)
    /// A plugin named by a network's `type` is in none of the plugin directories.
    case pluginNotFound(plugin: String, network: String, searched: [String])
    case noSuchNetwork(String)
    case networkExists(String)
    case invalidNetworkName(String)
    /// `bridge`, `none` and `host` (and networks from a CNI config directory) cannot be removed here.
    case predefinedNetwork(String)
    /// A `network create` option (`--subnet`, `--gateway`, `--ip` …) that is malformed or inconsistent.
    case invalidOption(option: String, value: String, reason: String)
    /// A requested subnet overlaps the subnet of another network.
    case subnetOverlap(subnet: String, network: String, networkSubnet: String)
    /// Every subnet of the automatic pool is taken (by networks or by routes on the host).
    case subnetPoolExhausted(pool: String)
    /// A `-p` specification that cannot be parsed.
    case invalidPort(spec: String, reason: String)
    /// The host port is bound by a host process or published by another container.
    case portAllocated(hostIP: String, hostPort: UInt16, proto: String)
    /// CHECK needs the result of an ADD, and there is none cached.
    case notAttached(network: String, containerID: String, ifName: String)
    /// A network cannot be attached to (`none`, `host`, or a definition without a config).
    case notAttachable(network: String, reason: String)

    public var description: String {
        switch self {
        case .system(let error): return error.description
        case .invalidConfiguration(let source, let reason): return "invalid network configuration \(source): \(reason)"
        case .plugin(let error): return error.description
        case .pluginNotFound(let plugin, let network, let searched):
            return "network \(network): CNI plugin \(plugin) not found in \(searched.joined(separator: ":"))"
        case .noSuchNetwork(let name): return "network \(name) not found"
        case .networkExists(let name): return "network with name \(name) already exists"
        case .invalidNetworkName(let name):
            return "invalid network name \"\(name)\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        case .predefinedNetwork(let name): return "\(name) is a pre-defined network and cannot be removed"
        case .invalidOption(let option, let value, let reason): return "invalid \(option) \(value): \(reason)"
        case .subnetOverlap(let subnet, let network, let other):
            return "invalid pool request: subnet \(subnet) overlaps with \(other) of network \(network)"
        case .subnetPoolExhausted(let pool):
            return
                "could not find an available, non-overlapping IPv4 address pool among \(pool) to assign to the network"
        case .invalidPort(let spec, let reason): return "invalid port specification \"\(spec)\": \(reason)"
        case .portAllocated(let ip, let port, let proto):
            let address = ip.isEmpty ? "0.0.0.0" : (ip.contains(":") ? "[\(ip)]" : ip)
            return "Bind for \(address):\(port)\(proto == "tcp" ? "" : "/" + proto) failed: port is already allocated"
        case .notAttached(let network, let containerID, let ifName):
            return "container \(containerID) has no cached attachment to network \(network) on \(ifName)"
        case .notAttachable(let network, let reason): return "network \(network) cannot be attached: \(reason)"
        }
    }
}

/// A CNI plugin's failure: which plugin of which network, the command, and the spec's error object
/// (`code`, `msg`, `details`) it printed, or its exit status and stderr when it printed none.
public struct CNIPluginError: Error, CustomStringConvertible, Sendable, Equatable {
    public var plugin: String
    public var network: String
    public var command: String
    /// The spec's error code (0 when the plugin printed no error object).
    public var code: Int
    public var message: String
    public var details: String
    public var exitStatus: String
    public var stderr: String

    public init(
        plugin: String, network: String, command: String, code: Int, message: String, details: String,
        exitStatus: String, stderr: String
    ) {
        self.plugin = plugin
        self.network = network
        self.command = command
        self.code = code
        self.message = message
        self.details = details
        self.exitStatus = exitStatus
        self.stderr = stderr
    }

    /// The meaning of the spec's well-known codes (CNI spec 1.0, "Error").
    public var codeMeaning: String? {
        switch code {
        case 1: return "incompatible CNI version"
        case 2: return "unsupported field in network configuration"
        case 3: return "container unknown or does not exist"
        case 4: return "invalid necessary environment variables"
        case 5: return "I/O failure"
        case 6: return "failed to decode content"
        case 7: return "invalid network config"
        case 11: return "try again later"
        default: return nil
        }
    }

    public var description: String {
        var text = "network \(network): CNI plugin \(plugin) failed (\(command))"
        if !message.isEmpty { text += ": \(message)" }
        if !details.isEmpty { text += ": \(details)" }
        if code != 0 { text += " [code \(code)\(codeMeaning.map { ", " + $0 } ?? "")]" }
        if message.isEmpty && details.isEmpty {
            text += ": \(exitStatus)"
            let trimmed = stderr.trimmingWhitespace
            if !trimmed.isEmpty { text += ": \(trimmed)" }
        }
        return text
    }

    /// Maps what a failed plugin left behind: the error object on stdout if it printed one (CNI spec
    /// 1.0 requires it), otherwise its stderr and exit status.
    public static func from(
        stdout: [UInt8], stderr: [UInt8], exitStatus: String, plugin: String, network: String,
        command: String
    ) -> CNIPluginError {
        var code = 0
        var message = ""
        var details = ""
        if let object = (try? JSONCoding.decode(JSON.self, from: stdout))?.object {
            code = Int(object["code"]?.int ?? 0)
            message = object["msg"]?.string ?? ""
            details = object["details"]?.string ?? ""
        }
        return CNIPluginError(
            plugin: plugin, network: network, command: command, code: code, message: message,
            details: details, exitStatus: exitStatus, stderr: String(decoding: stderr, as: UTF8.self))
    }
}

extension String {
    var trimmingWhitespace: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
