import BerthOS

/// A CNI network configuration list (spec 1.0 "Configuration format"): a name, a version, and plugins
/// run in order. Each plugin's configuration is kept as the JSON tree it came as, since only its plugin
/// knows most of its keys.
public struct NetworkConfigList: Sendable, Equatable {
    public var cniVersion: String
    public var name: String
    public var disableCheck: Bool
    public var plugins: [PluginConfig]
    /// Where it was loaded from, for messages (nil when generated).
    public var source: String?

    public init(
        cniVersion: String = "1.0.0", name: String, disableCheck: Bool = false, plugins: [PluginConfig],
        source: String? = nil
    ) {
        self.cniVersion = cniVersion
        self.name = name
        self.disableCheck = disableCheck
        self.plugins = plugins
        self.source = source
    }

    /// One plugin of the list: its `type`, the `capabilities` it declares, and every key as given.
    public struct PluginConfig: Sendable, Equatable {
        public var json: [String: JSON]

        public init(json: [String: JSON]) { self.json = json }

        public var type: String { json["type"]?.string ?? "" }

        /// Capability names the plugin declared true (`portMappings`, `ips`, `mac`, `dns` …).
        public var capabilities: Set<String> {
            guard let declared = json["capabilities"]?.object else { return [] }
            return Set(declared.compactMap { $0.value.bool == true ? $0.key : nil })
        }
    }

    /// Parses a `.conflist`, or a single-plugin `.conf`/`.json` (wrapped into a list of one, as libcni's
    /// `ConfListFromConf` does).
    public init(parsing bytes: [UInt8], source: String) throws(NetworkError) {
        let document: JSON
        do {
            document = try JSONCoding.decode(JSON.self, from: bytes)
        } catch {
            throw .invalidConfiguration(source: source, reason: "not JSON (\(error))")
        }
        guard let object = document.object else {
            throw .invalidConfiguration(source: source, reason: "not a JSON object")
        }
        guard let name = object["name"]?.string, !name.isEmpty else {
            throw .invalidConfiguration(source: source, reason: "no name")
        }
        // Spec 1.0: alphanumeric first, then alphanumerics, `_`, `.`, `-` — which also keeps a name
        // from steering the result cache's file path.
        guard Network.isValidName(name) else {
            throw .invalidConfiguration(source: source, reason: "invalid name \"\(name)\"")
        }
        let version = object["cniVersion"]?.string ?? "0.2.0"
        if let list = object["plugins"] {
            guard let entries = list.array, !entries.isEmpty else {
                throw .invalidConfiguration(source: source, reason: "plugins must be a non-empty array")
            }
            var plugins: [PluginConfig] = []
            for (index, entry) in entries.enumerated() {
                guard let members = entry.object, let type = members["type"]?.string, !type.isEmpty else {
                    throw .invalidConfiguration(source: source, reason: "plugin \(index) has no type")
                }
                try Self.checkPluginType(type, source: source)
                plugins.append(PluginConfig(json: members))
            }
            self.init(
                cniVersion: version, name: name, disableCheck: object["disableCheck"]?.bool ?? false,
                plugins: plugins, source: source)
        } else {
            guard let type = object["type"]?.string, !type.isEmpty else {
                throw .invalidConfiguration(source: source, reason: "neither plugins nor type")
            }
            try Self.checkPluginType(type, source: source)
            self.init(cniVersion: version, name: name, plugins: [PluginConfig(json: object)], source: source)
        }
    }

    /// Reads a configuration file; the extension decides nothing (a `.conf` holding a list is accepted).
    public static func load(path: String) throws(NetworkError) -> NetworkConfigList {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw .system(error) }
        return try NetworkConfigList(parsing: bytes, source: path)
    }

    /// The list as the JSON document a `.conflist` file holds.
    public var json: JSON {
        var object: [String: JSON] = [
            "cniVersion": .string(cniVersion),
            "name": .string(name),
            "plugins": .array(plugins.map { .object($0.json) }),
        ]
        if disableCheck { object["disableCheck"] = .bool(true) }
        return .object(object)
    }

    public func encoded(pretty: Bool = true) -> [UInt8] {
        // Encoding a JSON cannot fail (no non-finite doubles come out of the parser).
        (try? JSONCoding.encode(json, pretty: pretty)) ?? []
    }

    /// The stdin of plugin `index` (spec 1.0 "Execution of Network Configurations"): its own keys with
    /// the list's `name` and `cniVersion`, `runtimeConfig` holding the capability arguments it declared,
    /// and `prevResult` when there is one.
    public func pluginInput(_ index: Int, capabilityArgs: [String: JSON], prevResult: JSON?) -> JSON {
        let plugin = plugins[index]
        var object = plugin.json
        object["name"] = .string(name)
        object["cniVersion"] = .string(cniVersion)
        var runtimeConfig: [String: JSON] = [:]
        for capability in plugin.capabilities {
            if let value = capabilityArgs[capability] { runtimeConfig[capability] = value }
        }
        // A plugin without the capability must not see the argument (spec: "runtimeConfig … only those
        // capabilities the plugin declared").
        if runtimeConfig.isEmpty {
            object.removeValue(forKey: "runtimeConfig")
        } else {
            object["runtimeConfig"] = .object(runtimeConfig)
        }
        if let prevResult { object["prevResult"] = prevResult } else { object.removeValue(forKey: "prevResult") }
        return .object(object)
    }

    /// `type` is a file name in CNI_PATH; a path there would let a config run any program.
    static func checkPluginType(_ type: String, source: String) throws(NetworkError) {
        if type.contains("/") || type == "." || type == ".." {
            throw .invalidConfiguration(source: source, reason: "plugin type \"\(type)\" must be a plain file name")
        }
    }

    /// Whether the list's version supports CHECK (added in 0.4.0).
    var supportsCheck: Bool {
        let parts = cniVersion.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return false }
        return parts[0] >= 1 || (parts[0] == 0 && parts[1] >= 4)
    }
}
