#if canImport(Glibc)
import Glibc
#endif
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
            if error.errno == ENOENT { throw .invalidConfig(field: "config.json", reason: "no config.json in bundle \(bundle)") }
            throw .system(error, context: "reading \(path)")
        }
    }

    /// What the runtime needs before it clones the init (see ``LaunchEssentials``). When they do not
    /// read, the whole spec is decoded: for an error that names the field, or for them.
    static func essentials(_ bytes: [UInt8]) throws(RuntimeError) -> LaunchEssentials {
        if let tree = try? JSONParser.parse(bytes), let essentials = LaunchEssentials(tree) { return essentials }
        return LaunchEssentials(try decode(bytes))
    }

    public static func decode(_ bytes: [UInt8]) throws(RuntimeError) -> Spec {
        do {
            return try JSONTreeDecoder.decode(Spec.self, from: bytes)
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
            return .invalidConfig(field: fieldPath(context.codingPath), reason: "expected \(jsonType(type)), found null")
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
    init?(_ tree: JSONValue) {
        guard case .object(let top) = tree else { return nil }
        func object(_ value: JSONValue?) -> [String: JSONValue]?? {
            switch value {
            case nil, .null?: return .some(nil)
            case .object(let members)?: return .some(members)
            default: return nil
            }
        }
        func string(_ value: JSONValue?) -> String?? {
            switch value {
            case nil, .null?: return .some(nil)
            case .string(let text)?: return .some(text)
            default: return nil
            }
        }
        func array(_ value: JSONValue?) -> [JSONValue]?? {
            switch value {
            case nil, .null?: return .some(nil)
            case .array(let elements)?: return .some(elements)
            default: return nil
            }
        }
        func number<T: FixedWidthInteger>(_ value: JSONValue?, _ type: T.Type) -> T? {
            guard case .number(let text)? = value else { return nil }
            return T(text) ?? Double(text).flatMap { $0.rounded() == $0 ? T(exactly: $0) : nil }
        }
        func mappings(_ value: JSONValue?) -> [Spec.IDMapping]? {
            guard let list = array(value) else { return nil }
            var result: [Spec.IDMapping] = []
            for entry in list ?? [] {
                guard case .object(let fields) = entry, let container = number(fields["containerID"], UInt32.self),
                      let host = number(fields["hostID"], UInt32.self), let size = number(fields["size"], UInt32.self) else { return nil }
                result.append(Spec.IDMapping(containerID: container, hostID: host, size: size))
            }
            return result
        }

        guard let version = string(top["ociVersion"]), let process = object(top["process"]), let root = object(top["root"]),
              let linux = object(top["linux"]) else { return nil }
        ociVersion = version
        switch process?["terminal"] {
        case nil, .null?: terminal = false
        case .bool(let value)?: terminal = value
        default: return nil
        }
        guard let path = string(root?["path"]) else { return nil }
        rootPath = path
        guard let namespaceList = array(linux?["namespaces"]) else { return nil }
        for entry in namespaceList ?? [] {
            guard case .object(let fields) = entry, case .string(let type)? = fields["type"], let path = string(fields["path"]) else { return nil }
            namespaces.append(Spec.Namespace(type: type, path: path))
        }
        guard let uid = mappings(linux?["uidMappings"]), let gid = mappings(linux?["gidMappings"]),
              let cgroups = string(linux?["cgroupsPath"]) else { return nil }
        uidMappings = uid
        gidMappings = gid
        cgroupsPath = cgroups
        if let offsets = linux?["timeOffsets"], offsets != .null {
            guard case .object(let clocks) = offsets else { return nil }
            var parsed: [String: Spec.TimeOffset] = [:]
            for (clock, value) in clocks {
                guard case .object(let fields) = value else { return nil }
                var offset = Spec.TimeOffset()
                if let secs = fields["secs"], secs != .null { guard let value = number(secs, Int64.self) else { return nil }; offset.secs = value }
                if let nanos = fields["nanosecs"], nanos != .null { guard let value = number(nanos, UInt32.self) else { return nil }; offset.nanosecs = value }
                parsed[clock] = offset
            }
            timeOffsets = parsed
        }
    }
}
