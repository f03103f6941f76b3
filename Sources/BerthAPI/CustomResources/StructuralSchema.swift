import Foundation

/// One node of a CustomResourceDefinition version's `schema.openAPIV3Schema`, read once when the
/// definition is installed: what apiextensions-apiserver calls a structural schema. It does what
/// kube-apiserver does with a custom resource's body, in the same order: prune the fields the schema
/// does not declare (and `null`s where not nullable), apply `default`s, then validate (types, required,
/// enum, bounds, lengths, patterns, list types, allOf/anyOf/oneOf/not), each error in upstream's words
/// with its field path.
///
/// CEL rules (`x-kubernetes-validations`) are evaluated after the rest, within upstream's cost limits
/// (CELCost.swift); patterns are RE2 (LinearRegex), so no value can make either run away.
final class StructuralSchema: Sendable {
    let type: String?
    let properties: [String: StructuralSchema]
    /// `additionalProperties`: a schema for every member not in `properties` (a map), or `true` (any).
    let additionalProperties: StructuralSchema?
    let additionalPropertiesAllowed: Bool
    let items: StructuralSchema?
    let required: [String]
    let enumValues: [JSON]
    let minimum: Double?, maximum: Double?
    let exclusiveMinimum: Bool, exclusiveMaximum: Bool
    let multipleOf: Double?
    let minLength: Int?, maxLength: Int?
    /// `pattern`, with RE2's syntax and linear-time matching as upstream's Go `regexp`: the values it
    /// checks come from any user.
    let pattern: LinearRegex?
    /// `format` of a string (date-time, uuid …): checked when StringFormats knows it.
    let format: String?
    let minItems: Int?, maxItems: Int?
    let uniqueItems: Bool
    let minProperties: Int?, maxProperties: Int?
    let nullable: Bool
    let defaultValue: JSON?
    let preserveUnknownFields: Bool
    let intOrString: Bool
    let embeddedResource: Bool
    /// `x-kubernetes-list-type`: atomic, set or map (with `x-kubernetes-list-map-keys`).
    let listType: String?
    let listMapKeys: [String]
    let allOf: [StructuralSchema], anyOf: [StructuralSchema], oneOf: [StructuralSchema]
    let not: StructuralSchema?
    /// `x-kubernetes-validations`, compiled.
    let rules: [CELValidationRule]

    static let types = ["array", "boolean", "integer", "number", "object", "string"]

    /// Reads a schema, collecting what makes it unusable (not structural, a bad pattern) into `errors`
    /// under `path` (the CRD's field path of this node).
    init(_ j: JSON, path: String, errors: inout [APIError.Cause], root: Bool = false) {
        type = j["type"].string
        nullable = j["nullable"].bool ?? false
        preserveUnknownFields = j["x-kubernetes-preserve-unknown-fields"].bool ?? false
        intOrString = j["x-kubernetes-int-or-string"].bool ?? false
        embeddedResource = j["x-kubernetes-embedded-resource"].bool ?? false
        var props: [String: StructuralSchema] = [:]
        for (name, child) in j["properties"].object ?? [:] {
            props[name] = StructuralSchema(child, path: "\(path).properties[\(name)]", errors: &errors)
        }
        properties = props
        switch j["additionalProperties"] {
        case .bool(let allowed):
            additionalProperties = nil; additionalPropertiesAllowed = allowed
        case .object:
            additionalProperties = StructuralSchema(
                j["additionalProperties"], path: "\(path).additionalProperties", errors: &errors)
            additionalPropertiesAllowed = true
        default:
            additionalProperties = nil; additionalPropertiesAllowed = false
        }
        items = j["items"].object == nil ? nil : StructuralSchema(j["items"], path: "\(path).items", errors: &errors)
        required = (j["required"].array ?? []).compactMap(\.string)
        enumValues = j["enum"].array ?? []
        minimum = j["minimum"].double; maximum = j["maximum"].double
        exclusiveMinimum = j["exclusiveMinimum"].bool ?? false; exclusiveMaximum = j["exclusiveMaximum"].bool ?? false
        multipleOf = j["multipleOf"].double
        minLength = j["minLength"].int.map(Int.init); maxLength = j["maxLength"].int.map(Int.init)
        minItems = j["minItems"].int.map(Int.init); maxItems = j["maxItems"].int.map(Int.init)
        uniqueItems = j["uniqueItems"].bool ?? false
        minProperties = j["minProperties"].int.map(Int.init); maxProperties = j["maxProperties"].int.map(Int.init)
        let given = j["default"]
        // Not a ternary with `nil`: JSON is nil-literal expressible, so that `nil` would be `.null`, present.
        defaultValue = given.isNull ? JSON?.none : given
        listType = j["x-kubernetes-list-type"].string
        listMapKeys = (j["x-kubernetes-list-map-keys"].array ?? []).compactMap(\.string)
        format = j["format"].string
        if let text = j["pattern"].string, !text.isEmpty {
            do { pattern = try LinearRegex(text) } catch {
                pattern = nil
                errors.append(
                    FieldChecks.invalid(
                        "\(path).pattern", .string(text), "must be a valid regular expression, but isn't: \(error)"))
            }
        } else {
            pattern = nil
        }
        func list(_ key: String) -> [StructuralSchema] {
            (j[key].array ?? []).enumerated().map {
                StructuralSchema($0.element, path: "\(path).\(key)[\($0.offset)]", errors: &errors)
            }
        }
        allOf = list("allOf"); anyOf = list("anyOf"); oneOf = list("oneOf")
        not = j["not"].object == nil ? nil : StructuralSchema(j["not"], path: "\(path).not", errors: &errors)
        rules = (j["x-kubernetes-validations"].array ?? []).enumerated().compactMap {
            CELValidationRule($0.element, path: "\(path).x-kubernetes-validations[\($0.offset)]", errors: &errors)
        }

        // What makes a schema structural (apiextensions' validation of a v1 definition).
        if let type, !Self.types.contains(type) {
            errors += FieldChecks.supported(.string(type), Self.types, "\(path).type")
        }
        if root, type != "object" {
            errors.append(FieldChecks.invalid("\(path).type", .string(type ?? ""), "must be object at the root"))
        }
        if type == nil && !preserveUnknownFields && !intOrString && (!props.isEmpty || !root) && !isJunctorOnly(j) {
            errors.append(FieldChecks.required("\(path).type", "must not be empty for specified object fields"))
        }
        if type == "array" && items == nil {
            errors.append(FieldChecks.required("\(path).items", "must be specified"))
        }
        if !props.isEmpty && !j["additionalProperties"].isNull && j["additionalProperties"] != .bool(false) {
            errors.append(
                FieldChecks.forbidden(
                    "\(path).additionalProperties", "additionalProperties and properties are mutual exclusive"))
        }
        if intOrString && type != nil {
            errors.append(
                FieldChecks.invalid(
                    "\(path).type", .string(type ?? ""),
                    "must be empty to be structural for x-kubernetes-int-or-string"))
        }
        if listType == "map" && listMapKeys.isEmpty {
            errors.append(
                FieldChecks.required(
                    "\(path).x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"))
        }
        if let listType, !["atomic", "set", "map"].contains(listType) {
            errors += FieldChecks.supported(
                .string(listType), ["atomic", "set", "map"], "\(path).x-kubernetes-list-type")
        }
        if defaultValue != nil, root {
            errors.append(FieldChecks.forbidden("\(path).default", "must not be set at the root"))
        }
    }

    /// A node that only combines others (allOf/anyOf/oneOf/not inside a typed parent) may omit its type.
    private func isJunctorOnly(_ j: JSON) -> Bool {
        let keys = Set((j.object ?? [:]).keys)
        return !keys.isEmpty
            && keys.isSubset(of: [
                "allOf", "anyOf", "oneOf", "not", "description", "required", "pattern", "minimum", "maximum",
                "enum", "minLength", "maxLength", "format", "x-kubernetes-validations",
            ])
    }

    // MARK: pruning

    /// Drops the members the schema does not declare (recording their paths in `unknown`), and nulls
    /// where the schema is not nullable. At the root (and in embedded resources) apiVersion, kind and
    /// metadata are the object's own and always kept.
    func prune(_ value: inout JSON, path: String, unknown: inout [String], root: Bool = false) {
        switch value {
        case .object(var members):
            if preserveUnknownFields && properties.isEmpty && additionalProperties == nil {
                return
            }
            var changed = false
            for (key, member) in members {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if (root || embeddedResource) && ["apiVersion", "kind", "metadata"].contains(key) { continue }
                let child = properties[key] ?? additionalProperties
                guard let child else {
                    if preserveUnknownFields || additionalPropertiesAllowed { continue }
                    unknown.append(childPath)
                    members.removeValue(forKey: key); changed = true
                    continue
                }
                if member.isNull && !child.nullable {
                    members.removeValue(forKey: key); changed = true
                    continue
                }
                var m = member
                child.prune(&m, path: childPath, unknown: &unknown)
                if m != member { members[key] = m; changed = true }
            }
            if changed { value = .object(members) }
        case .array(var elements):
            guard let items else { return }
            var changed = false
            for i in elements.indices {
                var e = elements[i]
                items.prune(&e, path: "\(path)[\(i)]", unknown: &unknown)
                if e != elements[i] { elements[i] = e; changed = true }
            }
            if changed { value = .array(elements) }
        default: return
        }
    }

    // MARK: defaulting

    /// Sets `default` values where a member is absent, then descends (a default may itself be an object
    /// whose members have defaults).
    func applyDefaults(_ value: inout JSON) {
        switch value {
        case .object(var members):
            var changed = false
            for (key, child) in properties {
                if members[key] == nil || members[key] == .null && !child.nullable, let d = child.defaultValue {
                    members[key] = d; changed = true
                }
                if var m = members[key], m.object != nil || m.array != nil {
                    let before = m
                    child.applyDefaults(&m)
                    if m != before { members[key] = m; changed = true }
                }
            }
            if let additionalProperties {
                for (key, member) in members
                where properties[key] == nil && (member.object != nil || member.array != nil) {
                    var m = member
                    additionalProperties.applyDefaults(&m)
                    if m != member { members[key] = m; changed = true }
                }
            }
            if changed { value = .object(members) }
        case .array(var elements):
            guard let items else { return }
            var changed = false
            for i in elements.indices where elements[i].object != nil || elements[i].array != nil {
                let before = elements[i]
                items.applyDefaults(&elements[i])
                if elements[i] != before { changed = true }
            }
            if changed { value = .array(elements) }
        default: return
        }
    }

    // MARK: validation

    /// The value's field errors, each under `path`. At the root, metadata is the generic object rules'
    /// business and is not validated here. `old` is the stored value at the same place, on an update
    /// (transition rules, those reading `oldSelf`, need it); `transitionsOnly` checks only those rules
    /// (the rest was checked by the create-time validation the update also runs). The CEL rules of one
    /// validation share `budget`, upstream's runtime cost budget of a custom resource.
    func validate(
        _ value: JSON, old: JSON? = nil, path: String, into errs: inout [APIError.Cause], root: Bool = false,
        transitionsOnly: Bool = false, budget: CELValidationBudget = CELValidationBudget()
    ) {
        if transitionsOnly {
            validateTransitions(value, old: old, path: path, into: &errs, root: root, budget: budget)
            return
        }
        let where_ = path.isEmpty ? "body" : path
        if value.isNull {
            if !nullable && type != nil {
                errs.append(
                    .init(
                        where_, "FieldValueInvalid",
                        "Invalid value: \"null\": \(where_) in body must be of type \(type!): \"null\""))
            }
            return
        }
        if intOrString {
            if value.string == nil && (value.int == nil || value.isFloatingPoint) {
                errs.append(
                    .init(
                        where_, "FieldValueInvalid",
                        "Invalid value: \"\(Self.typeName(value))\": \(where_) in body must be of type integer,string: \"\(Self.typeName(value))\""
                    ))
                return
            }
        } else if let type, !Self.matches(value, type) {
            errs.append(
                .init(
                    where_, "FieldValueInvalid",
                    "Invalid value: \"\(Self.typeName(value))\": \(where_) in body must be of type \(type): \"\(Self.typeName(value))\""
                ))
            return
        }
        if !enumValues.isEmpty && !enumValues.contains(value) {
            let listed = enumValues.map { $0.string.map { "\"\($0)\"" } ?? $0.text }.joined(separator: ", ")
            errs.append(
                .init(
                    where_, "FieldValueNotSupported",
                    "Unsupported value: \(value.string.map { "\"\($0)\"" } ?? value.text): supported values: \(listed)")
            )
        }
        switch value {
        case .number:
            let n = value.double ?? 0
            if let maximum {
                if exclusiveMaximum ? n >= maximum : n > maximum {
                    errs.append(
                        FieldChecks.invalid(
                            where_, value,
                            "\(where_) in body should be less than \(exclusiveMaximum ? "" : "or equal to ")\(Self.format(maximum))"
                        ))
                }
            }
            if let minimum {
                if exclusiveMinimum ? n <= minimum : n < minimum {
                    errs.append(
                        FieldChecks.invalid(
                            where_, value,
                            "\(where_) in body should be greater than \(exclusiveMinimum ? "" : "or equal to ")\(Self.format(minimum))"
                        ))
                }
            }
            if let multipleOf, multipleOf > 0, (n / multipleOf).rounded() != n / multipleOf {
                errs.append(
                    FieldChecks.invalid(
                        where_, value, "\(where_) in body should be a multiple of \(Self.format(multipleOf))"))
            }
        case .string(let s):
            let length = s.count
            if let maxLength, length > maxLength {
                errs.append(.init(where_, "FieldValueTooLong", "Too long: may not be more than \(maxLength) bytes"))
            }
            if let minLength, length < minLength {
                errs.append(
                    FieldChecks.invalid(where_, value, "\(where_) in body should be at least \(minLength) chars long"))
            }
            if let pattern, !pattern.matches(s) {
                errs.append(FieldChecks.invalid(where_, value, "\(where_) in body should match '\(pattern.pattern)'"))
            }
            if let format, StringFormats.conforms(s, to: format) == false {
                errs.append(
                    FieldChecks.invalid(where_, value, "\(where_) in body must be of type \(format): \(value.text)"))
            }
        case .array(let elements):
            if let maxItems, elements.count > maxItems {
                errs.append(
                    .init(
                        where_, "FieldValueTooMany", "Too many: \(elements.count): must have at most \(maxItems) items")
                )
            }
            if let minItems, elements.count < minItems {
                errs.append(
                    FieldChecks.invalid(
                        where_, .int(Int64(elements.count)), "\(where_) in body should have at least \(minItems) items")
                )
            }
            if uniqueItems || listType == "set" {
                var seen = Set<JSON>()
                for (i, e) in elements.enumerated() where !seen.insert(e).inserted {
                    errs.append(.init("\(where_)[\(i)]", "FieldValueDuplicate", "Duplicate value: \(e.text)"))
                }
            }
            if listType == "map", !listMapKeys.isEmpty {
                var seen = Set<[JSON]>()
                for (i, e) in elements.enumerated() {
                    let key = listMapKeys.map { e[$0] }
                    if !seen.insert(key).inserted {
                        let shown = listMapKeys.map { "\"\($0)\":\(e[$0].text)" }.joined(separator: ",")
                        errs.append(.init("\(where_)[\(i)]", "FieldValueDuplicate", "Duplicate value: map[\(shown)]"))
                    }
                }
            }
            if let items {
                for (i, e) in elements.enumerated() {
                    items.validate(e, path: "\(where_)[\(i)]", into: &errs, budget: budget)
                }
            }
        case .object(let members):
            for name in required
            where members[name] == nil || (members[name] == .null && !(properties[name]?.nullable ?? false)) {
                errs.append(FieldChecks.required(path.isEmpty ? name : "\(path).\(name)"))
            }
            if let maxProperties, members.count > maxProperties {
                errs.append(
                    .init(
                        where_, "FieldValueTooMany",
                        "Too many: \(members.count): must have at most \(maxProperties) items"))
            }
            if let minProperties, members.count < minProperties {
                errs.append(
                    FieldChecks.invalid(
                        where_, .int(Int64(members.count)),
                        "\(where_) in body should have at least \(minProperties) properties"))
            }
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if (root || embeddedResource) && ["apiVersion", "kind", "metadata"].contains(key) { continue }
                guard let child = properties[key] ?? additionalProperties else { continue }
                child.validate(member, path: path.isEmpty ? key : "\(path).\(key)", into: &errs, budget: budget)
            }
        default: break
        }
        for sub in allOf { sub.validate(value, path: path, into: &errs, budget: budget) }
        if !anyOf.isEmpty && !anyOf.contains(where: { $0.accepts(value, path: path, budget: budget) }) {
            errs.append(FieldChecks.invalid(where_, value, "must validate at least one schema (anyOf)"))
        }
        if !oneOf.isEmpty && oneOf.filter({ $0.accepts(value, path: path, budget: budget) }).count != 1 {
            errs.append(FieldChecks.invalid(where_, value, "must validate one and only one schema (oneOf)"))
        }
        if let not, not.accepts(value, path: path, budget: budget) {
            errs.append(FieldChecks.invalid(where_, value, "must not validate the schema (not)"))
        }
        for rule in rules where !rule.expression.usesOldSelf {
            if let e = rule.check(value, old: nil, path: path, budget: budget) { errs.append(e) }
        }
    }

    /// Only the transition rules, with the old value correlated to the new one: an object's members by
    /// name, a map-list's elements by their keys (upstream's correlation; other list elements have none).
    func validateTransitions(
        _ value: JSON, old: JSON?, path: String, into errs: inout [APIError.Cause], root: Bool,
        budget: CELValidationBudget
    ) {
        guard let old, !old.isNull else { return }
        for rule in rules where rule.expression.usesOldSelf {
            if let e = rule.check(value, old: old, path: path, budget: budget) { errs.append(e) }
        }
        switch value {
        case .object(let members):
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if root && ["apiVersion", "kind", "metadata"].contains(key) { continue }
                guard let child = properties[key] ?? additionalProperties else { continue }
                child.validateTransitions(
                    member, old: old[key], path: path.isEmpty ? key : "\(path).\(key)", into: &errs, root: false,
                    budget: budget)
            }
        case .array(let elements):
            guard let items, listType == "map", !listMapKeys.isEmpty else { return }
            let previous = old.array ?? []
            for (i, e) in elements.enumerated() {
                let key = listMapKeys.map { e[$0] }
                let match = previous.first { p in listMapKeys.map { p[$0] } == key }
                items.validateTransitions(
                    e, old: match, path: "\(path)[\(i)]", into: &errs, root: false, budget: budget)
            }
        default: return
        }
    }

    func accepts(_ value: JSON, path: String, budget: CELValidationBudget) -> Bool {
        var errs: [APIError.Cause] = []
        validate(value, path: path, into: &errs, budget: budget)
        return errs.isEmpty
    }

    static func matches(_ value: JSON, _ type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("number", .number):
            return true
        case ("integer", .number):
            return !value.isFloatingPoint || value.int != nil && (value.double ?? 0).rounded() == value.double
        default: return false
        }
    }

    /// The OpenAPI type name of a JSON value, as upstream's errors name what they got.
    static func typeName(_ value: JSON) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return value.isFloatingPoint ? "number" : "integer"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// A bound as Go's %v prints a float64: no fraction when it has none.
    static func format(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}
