/// A tree inside a Codable value (a CNI plugin's configuration, whose keys only the plugin knows).
/// ``JSONTreeDecoder`` and ``JSONTreeEncoder`` hand the tree over as it is; other coders (Foundation's)
/// go through the single-value container.
extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        if let tree = decoder as? TreeBacked {
            self = tree.tree
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if let tree = encoder as? TreeBacked {
            tree.set(self)
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let text):
            if let value = Int64(text) {
                try container.encode(value)
            } else if let value = UInt64(text) {
                try container.encode(value)
            } else {
                try container.encode(Double(text) ?? 0)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// A coder over a tree: its value read or set whole.
protocol TreeBacked {
    var tree: JSON { get }
    func set(_ tree: JSON)
}
