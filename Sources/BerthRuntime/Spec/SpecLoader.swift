#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthOS
import FoundationEssentials

/// Reads config.json from a bundle, turning decoding failures into errors that name the JSON field.
public enum SpecLoader {
    public static func load(bundle: String) throws(RuntimeError) -> Spec {
        try decode(try read(bundle: bundle))
    }

    /// config.json's bytes.
    public static func read(bundle: String) throws(RuntimeError) -> [UInt8] {
        let path = FileSystem.join(bundle, "config.json")
        do {
            return try FileSystem.readFile(path)
        } catch {
            if error.errno == ENOENT {
                throw .invalidConfig(field: "config.json", reason: "no config.json in bundle \(bundle)")
            }
            throw .system(error, context: "reading \(path)")
        }
    }

    /// What the runtime needs before it clones the init (see ``LaunchEssentials``). When they do not
    /// read, the whole spec is decoded: for an error that names the field, or for them.
    static func essentials(_ tree: JSON) throws(RuntimeError) -> LaunchEssentials {
        if let essentials = LaunchEssentials(tree) { return essentials }
        return LaunchEssentials(try decode(tree))
    }

    public static func decode(_ bytes: [UInt8]) throws(RuntimeError) -> Spec {
        try decode(try parse(bytes))
    }

    /// config.json parsed once, for ``essentials(_:)`` and ``decode(_:)-(JSON)``.
    static func parse(_ bytes: [UInt8]) throws(RuntimeError) -> JSON {
        do { return try JSONTreeDecoder.parse(bytes) } catch { throw describe(error) }
    }

    static func decode(_ tree: JSON) throws(RuntimeError) -> Spec {
        do {
            return try JSONTreeDecoder.decode(Spec.self, from: tree)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalidConfig(field: "config.json", reason: "\(error)")
        }
    }

    /// `linux.namespaces[2].type` from a coding path.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        var result = ""
        for key in path {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return result.isEmpty ? "config.json" : result
    }

    static func describe(_ error: DecodingError) -> RuntimeError {
        switch error {
        case .typeMismatch(let type, let context):
            return .invalidConfig(field: fieldPath(context.codingPath), reason: "expected \(jsonType(type))")
        case .valueNotFound(let type, let context):
            return .invalidConfig(
                field: fieldPath(context.codingPath), reason: "expected \(jsonType(type)), found null")
        case .keyNotFound(let key, let context):
            return .invalidConfig(field: fieldPath(context.codingPath + [key]), reason: "required field is missing")
        case .dataCorrupted(let context):
            let detail = context.underlyingError.map { "\($0)" } ?? context.debugDescription
            return .invalidConfig(field: fieldPath(context.codingPath), reason: "malformed JSON: \(detail)")
        @unknown default:
            return .invalidConfig(field: "config.json", reason: "\(error)")
        }
    }

    private static func jsonType(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt32.Type, is UInt64.Type, is UInt16.Type:
            return "an integer in range"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

/// The few fields of config.json the runtime needs before it clones the init: namespaces (clone flags,
/// joins), ID mappings (written before the init runs), the terminal, time offsets, the cgroup path and
/// the rootfs path.
/// Decoding only these keeps the whole spec's decoding — a few milliseconds of Swift type metadata in a
/// fresh process — off the path to the clone: the runtime and the init then decode config.json at the
/// same time, on two cores.
struct LaunchEssentials: Equatable {
    var ociVersion: String?
    var terminal = false
    var rootPath: String?
    var namespaces: [Spec.Namespace] = []
    var uidMappings: [Spec.IDMapping] = []
    var gidMappings: [Spec.IDMapping] = []
    var timeOffsets: [String: Spec.TimeOffset]?
    var cgroupsPath: String?

    init(_ spec: Spec) {
        ociVersion = spec.ociVersion
        terminal = spec.process?.terminal ?? false
        rootPath = spec.root?.path
        namespaces = spec.linux?.namespaces ?? []
        uidMappings = spec.linux?.uidMappings ?? []
        gidMappings = spec.linux?.gidMappings ?? []
        timeOffsets = spec.linux?.timeOffsets
        cgroupsPath = spec.linux?.cgroupsPath
    }

    /// Read straight from the tree (no Codable: its per-type set-up is what this avoids); nil when a
    /// field has an unexpected type, so the full decoding can name it.
    init?(_ tree: JSON) {
        guard case .object(let top) = tree else { return nil }
        func mappings(_ value: JSON?) -> [Spec.IDMapping]? {
            guard let list = value.optionalArray else { return nil }
            var result: [Spec.IDMapping] = []
            for entry in list ?? [] {
                guard case .object(let fields) = entry, let container = fields["containerID"].integer(UInt32.self),
                    let host = fields["hostID"].integer(UInt32.self), let size = fields["size"].integer(UInt32.self)
                else { return nil }
                result.append(Spec.IDMapping(containerID: container, hostID: host, size: size))
            }
            return result
        }

        guard let version = top["ociVersion"].optionalString, let process = top["process"].optionalObject,
            let root = top["root"].optionalObject, let linux = top["linux"].optionalObject,
            let terminal = process?["terminal"].optionalBool, let path = root?["path"].optionalString,
            let namespaceList = linux?["namespaces"].optionalArray
        else { return nil }
        ociVersion = version
        self.terminal = terminal ?? false
        rootPath = path
        for entry in namespaceList ?? [] {
            guard case .object(let fields) = entry, let type = fields["type"].string,
                let path = fields["path"].optionalString
            else { return nil }
            namespaces.append(Spec.Namespace(type: type, path: path))
        }
        guard let uid = mappings(linux?["uidMappings"]), let gid = mappings(linux?["gidMappings"]),
            let cgroups = linux?["cgroupsPath"].optionalString, let offsets = linux?["timeOffsets"].optionalObject
        else { return nil }
        uidMappings = uid
        gidMappings = gid
        cgroupsPath = cgroups
        if let offsets {
            var parsed: [String: Spec.TimeOffset] = [:]
            for (clock, value) in offsets {
                guard case .object(let fields) = value, let secs = fields["secs"].optionalInteger(Int64.self),
                    let nanos = fields["nanosecs"].optionalInteger(UInt32.self)
                else { return nil }
                parsed[clock] = Spec.TimeOffset(secs: secs, nanosecs: nanos)
            }
            timeOffsets = parsed
        }
    }
}
