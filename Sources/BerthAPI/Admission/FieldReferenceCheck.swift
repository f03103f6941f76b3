import Foundation

/// What the policy type checker knows of a CEL value's type: a schema it can look fields up in, or
/// nothing (`dyn`: any field may be there).
indirect enum CheckedType: Equatable {
    case dyn
    /// A struct or scalar of the generated table of built-in kinds.
    case builtin(Schema)
    /// A node of a custom resource's structural schema.
    case structural(StructuralSchema)
    /// The top of a custom resource: its schema, with apiVersion, kind and metadata always there.
    case customResource(StructuralSchema)
    /// A scalar, by CEL's name for it (`string`, `int`, `double`, `bool`).
    case scalar(String)
    case list(CheckedType)
    case map(CheckedType)
    /// `variables`: the policy's variables by name.
    case variables([String: CheckedType])

    static func == (a: CheckedType, b: CheckedType) -> Bool {
        switch (a, b) {
        case (.dyn, .dyn): return true
        case (.structural(let x), .structural(let y)), (.customResource(let x), .customResource(let y)): return x === y
        case (.scalar(let x), .scalar(let y)): return x == y
        case (.list(let x), .list(let y)), (.map(let x), .map(let y)): return x == y
        case (.variables(let x), .variables(let y)): return x == y
        default: return false
        }
    }

    /// The type of `r`'s objects, nil when Berth has no schema of it (a built-in kind without a
    /// generated struct; a custom resource version without a schema).
    static func of(_ r: ResourceType) -> CheckedType? {
        if let custom = r.custom {
            return custom.schema.map { .customResource($0) }
        }
        guard Schema.definitions[Schema.definitionName(r)] != nil else { return nil }
        return .builtin(Schema.top(r))
    }

    enum Member {
        case found(CheckedType)
        case undefined
        /// A scalar (or list) has no fields; the CEL type name says which.
        case notSelectable(String)
    }

    /// The type of field `name` of a value of this type.
    func member(_ name: String) -> Member {
        switch self {
        case .dyn: return .found(.dyn)
        case .scalar(let type): return .notSelectable(type)
        case .list: return .found(.dyn)
        case .map(let values): return .found(values)
        case .variables(let declared): return declared[name].map { .found($0) } ?? .undefined
        case .builtin(let schema):
            switch schema.resolved {
            case .object(_, let fields):
                guard let field = fields[name] else { return .undefined }
                return .found(Self.from(field))
            case .map(let values): return .found(Self.from(values))
            case .string: return .notSelectable("string")
            case .bool: return .notSelectable("bool")
            case .int: return .notSelectable("int")
            case .number: return .notSelectable("double")
            default: return .found(.dyn)
            }
        case .customResource(let schema):
            switch name {
            case "apiVersion", "kind": return .found(.scalar("string"))
            case "metadata": return .found(.builtin(.ref(Schema.openAPIName("meta.v1.ObjectMeta"))))
            default: return CheckedType.structural(schema).member(name)
            }
        case .structural(let schema):
            if schema.preserveUnknownFields || schema.intOrString { return .found(.dyn) }
            switch schema.type {
            case "object":
                if let field = schema.properties[name] { return .found(Self.from(field)) }
                if let values = schema.additionalProperties { return .found(Self.from(values)) }
                return schema.additionalPropertiesAllowed || schema.embeddedResource ? .found(.dyn) : .undefined
            case "string": return .notSelectable("string")
            case "integer": return .notSelectable("int")
            case "number": return .notSelectable("double")
            case "boolean": return .notSelectable("bool")
            default: return .found(.dyn)
            }
        }
    }

    /// The type of an element (a list's item, a map's value) of a value of this type.
    var element: CheckedType {
        switch self {
        case .list(let items), .map(let items): return items
        default: return .dyn
        }
    }

    /// What a macro's variable ranges over: a list's items, a map's keys.
    var iterated: CheckedType {
        switch self {
        case .list(let items): return items
        case .map: return .scalar("string")
        default: return .dyn
        }
    }

    private static func from(_ schema: Schema) -> CheckedType {
        switch schema.resolved {
        case .array(let items, _, _): return .list(from(items))
        case .map(let values): return .map(from(values))
        case .any, .freeform, .intOrString, .quantity: return .dyn
        default: return .builtin(schema)
        }
    }

    private static func from(_ schema: StructuralSchema) -> CheckedType {
        if schema.preserveUnknownFields || schema.intOrString { return .dyn }
        switch schema.type {
        case "array": return .list(schema.items.map(from) ?? .dyn)
        case "object" where schema.properties.isEmpty:
            if let values = schema.additionalProperties { return .map(from(values)) }
            return schema.embeddedResource ? .dyn : .structural(schema)
        default: return .structural(schema)
        }
    }
}

/// Walks an expression, finding each field selection its operand's type does not have.
enum FieldReferenceCheck {
    struct Issue {
        /// The field selected, to find it in the expression's text.
        var field: String
        /// cel-go's words: `undefined field 'foo'`, `type 'string' does not support field selection`.
        var message: String
    }

    /// The type of `e` where identifiers have the types in `scope`; issues found are appended.
    static func type(of e: CELExpression, _ scope: [String: CheckedType], _ issues: inout [Issue]) -> CheckedType {
        switch e {
        case .literal(let v):
            switch v {
            case .string: return .scalar("string")
            case .bool: return .scalar("bool")
            case .number: return .scalar(v.isFloatingPoint ? "double" : "int")
            default: return .dyn
            }
        case .identifier(let name): return scope[name] ?? .dyn
        case .list(let items):
            for item in items { _ = type(of: item, scope, &issues) }
            return .list(.dyn)
        case .select(let target, let field), .has(let target, let field):
            let selected = select(type(of: target, scope, &issues), field, &issues)
            if case .has = e { return .scalar("bool") }
            return selected
        case .index(let target, let index):
            _ = type(of: index, scope, &issues)
            return type(of: target, scope, &issues).element
        case .call(_, let target, let args):
            if let target { _ = type(of: target, scope, &issues) }
            for arg in args { _ = type(of: arg, scope, &issues) }
            return .dyn
        case .macro(let name, let target, let variable, let body):
            let collection = type(of: target, scope, &issues)
            var inner = scope
            inner[variable] = collection.iterated
            _ = type(of: body, inner, &issues)
            switch name {
            case "all", "exists", "exists_one": return .scalar("bool")
            case "filter": return collection
            default: return .list(.dyn)
            }
        case .unary(_, let operand):
            _ = type(of: operand, scope, &issues)
            return .dyn
        case .binary(let op, let a, let b):
            _ = type(of: a, scope, &issues)
            _ = type(of: b, scope, &issues)
            return ["==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"].contains(op) ? .scalar("bool") : .dyn
        case .conditional(let c, let a, let b):
            _ = type(of: c, scope, &issues)
            let x = type(of: a, scope, &issues), y = type(of: b, scope, &issues)
            return x == y ? x : .dyn
        }
    }

    private static func select(_ operand: CheckedType, _ field: String, _ issues: inout [Issue]) -> CheckedType {
        switch operand.member(field) {
        case .found(let type): return type
        case .undefined:
            issues.append(Issue(field: field, message: "undefined field '\(field)'"))
        case .notSelectable(let name):
            issues.append(Issue(field: field, message: "type '\(name)' does not support field selection"))
        }
        return .dyn
    }
}
