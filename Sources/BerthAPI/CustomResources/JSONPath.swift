/// A field path of the form `.spec.replicas` (what a CRD's scale subresource and selectable fields
/// name): members only, no indexes or filters.
struct JSONFieldPath: Sendable, Hashable {
    let keys: [String]

    init?(_ text: String) {
        guard text.hasPrefix("."), text.count > 1 else { return nil }
        let parts = text.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: { $0.isEmpty || $0.contains("[") }) else { return nil }
        keys = parts
    }

    func get(_ obj: JSON) -> JSON { obj[keys] }

    /// Sets the value, creating the objects on the way.
    func set(_ obj: inout JSON, _ value: JSON) {
        func set(_ node: inout JSON, _ rest: ArraySlice<String>) {
            guard let first = rest.first else { node = value; return }
            var members = node.object ?? [:]
            var child = members[first] ?? .null
            set(&child, rest.dropFirst())
            members[first] = child
            node = .object(members)
        }
        set(&obj, keys[...])
    }
}

/// The JSONPath subset printer columns use (kubectl's `{.status.conditions[?(@.type=="Ready")].status}`
/// without braces): members, `[n]`, `[*]`, and filters comparing a member path with a literal by `==`
/// or `!=`. Evaluates to the matches in order; a column shows the first.
struct JSONPathExpression: Sendable {
    indirect enum Step: Sendable {
        case member(String)
        case index(Int)
        case all
        case filter(path: [String], equal: Bool, literal: JSON)
    }
    let steps: [Step]

    init?(_ text: String) {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        if s.hasPrefix("{") && s.hasSuffix("}") { s = s.dropFirst().dropLast() }
        guard s.hasPrefix(".") || s.hasPrefix("[") else { return nil }
        var steps: [Step] = []
        while !s.isEmpty {
            if s.hasPrefix(".") {
                s = s.dropFirst()
                let name = s.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                steps.append(name == "*" ? .all : .member(String(name)))
                s = s.dropFirst(name.count)
            } else if s.hasPrefix("[") {
                guard let close = Self.closingBracket(s) else { return nil }
                let inner = s[s.index(after: s.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                s = s[s.index(after: close)...]
                if inner == "*" {
                    steps.append(.all)
                } else if let i = Int(inner) {
                    steps.append(.index(i))
                } else if inner.hasPrefix("'") && inner.hasSuffix("'") && inner.count >= 2 {
                    steps.append(.member(String(inner.dropFirst().dropLast())))
                } else if inner.hasPrefix("?(") && inner.hasSuffix(")") {
                    guard let f = Self.filter(String(inner.dropFirst(2).dropLast())) else { return nil }
                    steps.append(f)
                } else {
                    return nil
                }
            } else {
                return nil
            }
        }
        self.steps = steps
    }

    private static func closingBracket(_ s: Substring) -> Substring.Index? {
        var depth = 0
        var quote: Character?
        for i in s.indices {
            let c = s[i]
            if let q = quote { if c == q { quote = nil }; continue }
            if c == "\"" || c == "'" { quote = c; continue }
            if c == "[" { depth += 1 }
            if c == "]" { depth -= 1; if depth == 0 { return i } }
        }
        return nil
    }

    /// `@.a.b=="x"`, `@.a!='x'`, `@.n==3`.
    private static func filter(_ text: String) -> Step? {
        let equal: Bool
        let parts: [String]
        if text.contains("!=") {
            equal = false; parts = text.components(separatedBy: "!=")
        } else if text.contains("==") {
            equal = true; parts = text.components(separatedBy: "==")
        } else {
            return nil
        }
        guard parts.count == 2 else { return nil }
        let lhs = parts[0].trimmingCharacters(in: .whitespaces)
        let rhs = parts[1].trimmingCharacters(in: .whitespaces)
        guard lhs.hasPrefix("@.") else { return nil }
        let path = lhs.dropFirst(2).split(separator: ".").map(String.init)
        let literal: JSON
        if (rhs.hasPrefix("\"") && rhs.hasSuffix("\"")) || (rhs.hasPrefix("'") && rhs.hasSuffix("'")), rhs.count >= 2 {
            literal = .string(String(rhs.dropFirst().dropLast()))
        } else if let parsed = try? JSON.parse(Array(rhs.utf8)) {
            literal = parsed
        } else {
            return nil
        }
        return .filter(path: path, equal: equal, literal: literal)
    }

    func evaluate(_ obj: JSON) -> [JSON] {
        var current = [obj]
        for step in steps {
            var next: [JSON] = []
            for node in current {
                switch step {
                case .member(let name):
                    let v = node[name]
                    if !v.isNull { next.append(v) }
                case .index(let i):
                    if let a = node.array {
                        let j = i < 0 ? a.count + i : i
                        if a.indices.contains(j) { next.append(a[j]) }
                    }
                case .all:
                    if let a = node.array {
                        next += a
                    } else if let o = node.object {
                        next += o.keys.sorted().map { o[$0]! }
                    }
                case .filter(let path, let equal, let literal):
                    for e in node.array ?? [] {
                        let v = e[path]
                        let same = v == literal || (v.double != nil && v.double == literal.double)
                        if same == equal && !(v.isNull && equal) { next.append(e) }
                    }
                }
            }
            current = next
        }
        return current
    }
}
