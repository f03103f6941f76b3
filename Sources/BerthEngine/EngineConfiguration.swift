#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthOS

/// The engine's configuration file (`/etc/berth/engine.json`, or `$BERTH_CONFIG`), in dockerd's
/// daemon.json vocabulary where docker has a key, so an existing daemon.json mostly works as it is.
public struct EngineConfiguration: Sendable, Equatable {
    public var dataRoot: String?
    /// Mirrors for Docker Hub (dockerd's `registry-mirrors`).
    public var registryMirrors: [String] = []
    /// Mirrors for any registry (podman's registries.conf `[[registry.mirror]]`): registry → mirrors.
    public var mirrors: [String: [String]] = [:]
    public var insecureRegistries: [String] = []
    public var defaultRuntime: String?
    /// Named runtimes (`"runtimes": {"youki": {"path": "/usr/local/bin/youki"}}`).
    public var runtimes: [String: String] = [:]
    public var logDriver: String?
    public var logOptions: [String: String] = [:]
    /// The default bridge network's subnet (dockerd's `bip`, as gateway/prefix or a subnet).
    public var bridgeIP: String?
    /// Pools user networks' subnets come from (dockerd's `default-address-pools`).
    public var addressPools: [AddressPool] = []

    public struct AddressPool: Codable, Sendable, Equatable {
        public var base: String
        public var size: Int
    }

    public init() {}

    /// The file's path: `$BERTH_CONFIG`, else /etc/berth/engine.json.
    public static var defaultPath: String {
        if let env = getenv("BERTH_CONFIG"), env.pointee != 0 { return String(cString: env) }
        return "/etc/berth/engine.json"
    }

    /// Reads the file; a missing file is an empty configuration, a malformed one an error naming the key.
    public static func load(_ path: String = EngineConfiguration.defaultPath) throws(EngineError) -> EngineConfiguration
    {
        guard FileSystem.exists(path) else { return EngineConfiguration() }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw .system(error, context: "reading \(path)") }
        let parsed: JSON
        do { parsed = try JSON.parse(bytes) } catch {
            throw .invalidArgument(what: path, reason: "invalid JSON: \(error)")
        }
        guard case .object(let object) = parsed else {
            throw .invalidArgument(what: path, reason: "the configuration must be a JSON object")
        }
        var c = EngineConfiguration()
        var unknown: [String] = []
        func strings(_ key: String) throws(EngineError) -> [String] {
            guard let list = object[key]?.array, case let strings = list.compactMap(\.string),
                strings.count == list.count
            else {
                throw .invalidArgument(what: "\(path): \(key)", reason: "must be a list of strings")
            }
            return strings
        }
        func string(_ key: String) throws(EngineError) -> String {
            guard let value = object[key]?.string else {
                throw .invalidArgument(what: "\(path): \(key)", reason: "must be a string")
            }
            return value
        }
        for key in object.keys.sorted() {
            switch key {
            case "data-root": c.dataRoot = try string(key)
            case "registry-mirrors": c.registryMirrors = try strings(key)
            case "insecure-registries": c.insecureRegistries = try strings(key)
            case "default-runtime": c.defaultRuntime = try string(key)
            case "log-driver": c.logDriver = try string(key)
            case "bip": c.bridgeIP = try string(key)
            case "mirrors":
                guard let map = object[key]?.object else {
                    throw .invalidArgument(
                        what: "\(path): mirrors", reason: "must be an object of registry → list of mirrors")
                }
                for (registry, list) in map {
                    guard let items = list.array, case let hosts = items.compactMap(\.string),
                        hosts.count == items.count
                    else {
                        throw .invalidArgument(
                            what: "\(path): mirrors.\(registry)", reason: "must be a list of strings")
                    }
                    c.mirrors[registry] = hosts
                }
            case "log-opts":
                guard let map = object[key], map.object != nil, map.stringMap.count == map.object?.count else {
                    throw .invalidArgument(what: "\(path): log-opts", reason: "must be an object of strings")
                }
                c.logOptions = map.stringMap
            case "runtimes":
                guard let map = object[key]?.object else {
                    throw .invalidArgument(what: "\(path): runtimes", reason: "must be an object")
                }
                for (name, value) in map {
                    guard let runtimePath = value["path"].string else {
                        throw .invalidArgument(
                            what: "\(path): runtimes.\(name)", reason: "must be {\"path\": \"/path/to/runtime\"}")
                    }
                    c.runtimes[name] = runtimePath
                }
            case "default-address-pools":
                guard let list = object[key]?.array, list.allSatisfy({ $0.object != nil }) else {
                    throw .invalidArgument(
                        what: "\(path): default-address-pools", reason: "must be a list of {base, size}")
                }
                for entry in list {
                    guard let base = entry["base"].string, let size = entry["size"].int.map(Int.init),
                        (1...32).contains(size)
                    else {
                        throw .invalidArgument(
                            what: "\(path): default-address-pools",
                            reason: "each pool needs \"base\" (a CIDR) and \"size\" (1-32)")
                    }
                    c.addressPools.append(AddressPool(base: base, size: size))
                }
            default:
                unknown.append(key)
            }
        }
        if !unknown.isEmpty {
            throw .invalidArgument(
                what: path,
                reason:
                    "the following directives don't match any configuration option: \(unknown.joined(separator: ", "))")
        }
        return c
    }

    /// Every registry's mirrors, Docker Hub's from `registry-mirrors` included.
    public var allMirrors: [String: [String]] {
        var result = mirrors
        if !registryMirrors.isEmpty { result["docker.io", default: []] += registryMirrors }
        return result
    }
}
