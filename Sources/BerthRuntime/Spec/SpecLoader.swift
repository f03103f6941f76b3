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
    /// decode, the whole spec is decoded for an error that names the field.
    static func essentials(_ bytes: [UInt8]) throws(RuntimeError) -> LaunchEssentials {
        do {
            return try JSONDecoder().decode(LaunchEssentials.self, from: Data(bytes))
        } catch {
            _ = try decode(bytes)
            throw .invalidConfig(field: "config.json", reason: "\(error)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(RuntimeError) -> Spec {
        do {
            return try JSONDecoder().decode(Spec.self, from: Data(bytes))
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
struct LaunchEssentials: Decodable {
    struct Process: Decodable { var terminal: Bool? }
    struct Root: Decodable { var path: String? }
    struct Linux: Decodable {
        var namespaces: [Spec.Namespace]?
        var uidMappings: [Spec.IDMapping]?
        var gidMappings: [Spec.IDMapping]?
        var timeOffsets: [String: Spec.TimeOffset]?
        var cgroupsPath: String?
    }
    var ociVersion: String?
    var process: Process?
    var root: Root?
    var linux: Linux?
}
