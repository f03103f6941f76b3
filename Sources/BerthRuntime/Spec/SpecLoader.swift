#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials

/// Reads config.json from a bundle, turning decoding failures into errors that name the JSON field.
public enum SpecLoader {
    public static func load(bundle: String) throws(RuntimeError) -> Spec {
        let path = FileSystem.join(bundle, "config.json")
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path)
        } catch {
            if error.errno == ENOENT { throw .invalidConfig(field: "config.json", reason: "no config.json in bundle \(bundle)") }
            throw .system(error, context: "reading \(path)")
        }
        return try decode(bytes)
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
