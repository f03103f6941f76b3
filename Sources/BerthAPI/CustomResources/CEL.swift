import Foundation

/// The part of CEL (the Common Expression Language) that CustomResourceDefinitions' validation rules
/// (`x-kubernetes-validations`) use: literals, `self`/`oldSelf`, field selection and indexing, the
/// logical, comparison, arithmetic and `in` operators, the conditional, `has()`, `size()`, the string
/// functions (startsWith, endsWith, contains, matches, find, findAll, lowerAscii, upperAscii, trim,
/// indexOf), the
/// list and map macros (all, exists, exists_one, filter, map) and int/double/string conversions, over
/// JSON values. Rules are parsed once, when the definition is installed; a rule outside the subset is a
/// compilation error at the definition, as upstream refuses a rule it cannot compile.
indirect enum CELExpression: Sendable {
    case literal(JSON)
    case identifier(String)
    case list([CELExpression])
    case select(CELExpression, String)
    case index(CELExpression, CELExpression)
    case call(String, target: CELExpression?, [CELExpression])
    /// A macro: `target.all(x, body)` and friends, and `has(a.b)`.
    case macro(String, target: CELExpression, variable: String, body: CELExpression)
    case has(CELExpression, String)
    case unary(String, CELExpression)
    case binary(String, CELExpression, CELExpression)
    case conditional(CELExpression, CELExpression, CELExpression)

    /// Whether the expression reads `oldSelf` (a transition rule: evaluated only on updates).
    var usesOldSelf: Bool {
        switch self {
        case .literal: return false
        case .identifier(let n): return n == "oldSelf"
        case .list(let items): return items.contains { $0.usesOldSelf }
        case .select(let e, _), .has(let e, _), .unary(_, let e): return e.usesOldSelf
        case .index(let a, let b), .binary(_, let a, let b): return a.usesOldSelf || b.usesOldSelf
        case .call(_, let t, let args): return (t?.usesOldSelf ?? false) || args.contains { $0.usesOldSelf }
        case .macro(_, let t, _, let b): return t.usesOldSelf || b.usesOldSelf
        case .conditional(let a, let b, let c): return a.usesOldSelf || b.usesOldSelf || c.usesOldSelf
        }
    }
}

struct CELError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: parsing

struct CELParser {
    enum Token: Equatable {
        case ident(String), int(Int64), double(Double), string(String), op(String), end
    }
    private var tokens: [Token] = []
    private var at = 0
    private var depth = 0
    /// Rules longer or nested deeper are refused: parsing and evaluating recurse once per level, and a
    /// definition's author must not be able to exhaust an API server's stack.
    static let maxLength = 8192
    static let maxDepth = 64

    static func parse(_ text: String) throws -> CELExpression {
        guard text.utf8.count <= maxLength else {
            throw CELError("expression is longer than \(maxLength) bytes")
        }
        var p = CELParser()
        p.tokens = try tokenize(text)
        let e = try p.ternary()
        guard p.peek == .end else { throw CELError("Syntax error: unexpected \(p.describe(p.peek))") }
        return e
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var out: [Token] = []
        let chars = Array(text)
        var i = 0
        let ops3 = ["&&", "||", "==", "!=", "<=", ">="]
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                out.append(.ident(String(chars[i..<j]))); i = j; continue
            }
            if c.isNumber {
                var j = i
                var isDouble = false
                while j < chars.count && (chars[j].isNumber || chars[j] == "." || chars[j] == "e" || chars[j] == "E") {
                    if chars[j] == "." {
                        // `1.size()` is not a thing; a dot followed by a digit is a fraction.
                        guard j + 1 < chars.count, chars[j + 1].isNumber else { break }
                        isDouble = true
                    }
                    if chars[j] == "e" || chars[j] == "E" { isDouble = true }
                    j += 1
                }
                let text = String(chars[i..<j])
                if j < chars.count && (chars[j] == "u" || chars[j] == "U") { j += 1 }
                if isDouble {
                    guard let d = Double(text) else { throw CELError("Syntax error: bad number \(text)") }
                    out.append(.double(d))
                } else {
                    guard let n = Int64(text) else { throw CELError("Syntax error: bad number \(text)") }
                    out.append(.int(n))
                }
                i = j; continue
            }
            if c == "'" || c == "\"" {
                var j = i + 1
                var s = ""
                while j < chars.count && chars[j] != c {
                    if chars[j] == "\\", j + 1 < chars.count {
                        j += 1
                        switch chars[j] {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        default: s.append(chars[j])
                        }
                    } else {
                        s.append(chars[j])
                    }
                    j += 1
                }
                guard j < chars.count else { throw CELError("Syntax error: unterminated string") }
                out.append(.string(s)); i = j + 1; continue
            }
            if i + 1 < chars.count, ops3.contains(String(chars[i...i + 1])) {
                out.append(.op(String(chars[i...i + 1]))); i += 2; continue
            }
            if "+-*/%<>!?:.,()[]{}".contains(c) { out.append(.op(String(c))); i += 1; continue }
            throw CELError("Syntax error: unexpected character '\(c)'")
        }
        out.append(.end)
        return out
    }

    private var peek: Token { tokens[at] }
    private mutating func next() -> Token { defer { at += 1 }; return tokens[at] }
    private func describe(_ t: Token) -> String {
        switch t {
        case .ident(let s): return "'\(s)'"
        case .int(let n): return "'\(n)'"
        case .double(let d): return "'\(d)'"
        case .string(let s): return "'\"\(s)\"'"
        case .op(let o): return "'\(o)'"
        case .end: return "end of input"
        }
    }
    private mutating func expect(_ op: String) throws {
        guard next() == .op(op) else { throw CELError("Syntax error: expected '\(op)'") }
    }

    private mutating func ternary() throws -> CELExpression {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw CELError("expression nested more than \(Self.maxDepth) levels") }
        let c = try or()
        guard peek == .op("?") else { return c }
        _ = next()
        let a = try or()
        try expect(":")
        return .conditional(c, a, try ternary())
    }
    private mutating func or() throws -> CELExpression {
        var e = try and()
        while peek == .op("||") { _ = next(); e = .binary("||", e, try and()) }
        return e
    }
    private mutating func and() throws -> CELExpression {
        var e = try relation()
        while peek == .op("&&") { _ = next(); e = .binary("&&", e, try relation()) }
        return e
    }
    private mutating func relation() throws -> CELExpression {
        var e = try additive()
        while true {
            if case .op(let o) = peek, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = next(); e = .binary(o, e, try additive())
            } else if peek == .ident("in") {
                _ = next(); e = .binary("in", e, try additive())
            } else {
                return e
            }
        }
    }
    private mutating func additive() throws -> CELExpression {
        var e = try multiplicative()
        while case .op(let o) = peek, o == "+" || o == "-" { _ = next(); e = .binary(o, e, try multiplicative()) }
        return e
    }
    private mutating func multiplicative() throws -> CELExpression {
        var e = try unary()
        while case .op(let o) = peek, o == "*" || o == "/" || o == "%" { _ = next(); e = .binary(o, e, try unary()) }
        return e
    }
    private mutating func unary() throws -> CELExpression {
        if peek == .op("!") || peek == .op("-") {
            guard case .op(let op) = next() else { return try member() }
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw CELError("expression nested more than \(Self.maxDepth) levels") }
            return .unary(op, try unary())
        }
        return try member()
    }
    private mutating func member() throws -> CELExpression {
        var e = try primary()
        while true {
            if peek == .op(".") {
                _ = next()
                guard case .ident(let name) = next() else { throw CELError("Syntax error: expected a field name") }
                if peek == .op("(") {
                    _ = next()
                    let macros = ["all", "exists", "exists_one", "filter", "map"]
                    if macros.contains(name), case .ident(let v) = peek, tokens[at + 1] == .op(",") {
                        _ = next(); _ = next()
                        let body = try ternary()
                        try expect(")")
                        e = .macro(name, target: e, variable: v, body: body)
                    } else {
                        e = .call(name, target: e, try arguments())
                    }
                } else {
                    e = .select(e, name)
                }
            } else if peek == .op("[") {
                _ = next()
                let i = try ternary()
                try expect("]")
                e = .index(e, i)
            } else {
                return e
            }
        }
    }
    private mutating func arguments() throws -> [CELExpression] {
        var args: [CELExpression] = []
        if peek == .op(")") { _ = next(); return args }
        while true {
            args.append(try ternary())
            if peek == .op(",") { _ = next(); continue }
            try expect(")")
            return args
        }
    }
    private mutating func primary() throws -> CELExpression {
        switch next() {
        case .int(let n): return .literal(.int(n))
        case .double(let d): return .literal(CELEvaluator.double(d))
        case .string(let s): return .literal(.string(s))
        case .ident("true"): return .literal(.bool(true))
        case .ident("false"): return .literal(.bool(false))
        case .ident("null"): return .literal(.null)
        case .ident("has"):
            try expect("(")
            let arg = try member()
            try expect(")")
            guard case .select(let target, let field) = arg else {
                throw CELError("invalid argument to has() macro")
            }
            return .has(target, field)
        case .ident(let name):
            if peek == .op("(") { _ = next(); return .call(name, target: nil, try arguments()) }
            return .identifier(name)
        case .op("("):
            let e = try ternary()
            try expect(")")
            return e
        case .op("["):
            var items: [CELExpression] = []
            if peek == .op("]") { _ = next(); return .list(items) }
            while true {
                items.append(try ternary())
                if peek == .op(",") { _ = next(); if peek == .op("]") { _ = next(); return .list(items) }; continue }
                try expect("]")
                return .list(items)
            }
        case let t: throw CELError("Syntax error: unexpected \(describe(t))")
        }
    }
}

// MARK: evaluation

struct CELEvaluator {
    var variables: [String: JSON]
    /// Shared by the copies a comprehension makes, so the whole evaluation counts against one limit.
    var cost = CELCostTracker()

    func eval(_ e: CELExpression) throws -> JSON {
        if case .literal = e {} else { try cost.charge(1) }
        switch e {
        case .literal(let v): return v
        case .identifier(let n):
            guard let v = variables[n] else { throw CELError("undeclared reference to '\(n)'") }
            return v
        case .list(let items): return .array(try items.map(eval))
        case .select(let target, let field):
            let t = try eval(target)
            guard case .object(let members) = t else { throw CELError("no such key: \(field)") }
            guard let v = members[field] else { throw CELError("no such key: \(field)") }
            return v
        case .has(let target, let field):
            guard case .object(let members) = try eval(target) else { return .bool(false) }
            return .bool(members[field].map { !$0.isNull } ?? false)
        case .index(let target, let i):
            let t = try eval(target), key = try eval(i)
            switch t {
            case .array(let a):
                guard let n = key.int, a.indices.contains(Int(n)) else {
                    throw CELError("index out of bounds: \(key.text)")
                }
                return a[Int(n)]
            case .object(let m):
                guard let k = key.string, let v = m[k] else { throw CELError("no such key: \(key.text)") }
                return v
            default: throw CELError("no such overload: index")
            }
        case .unary(let op, let x):
            let v = try eval(x)
            if op == "!" {
                guard let b = v.bool else { throw CELError("no such overload: !\(Self.typeName(v))") }
                return .bool(!b)
            }
            if let n = v.int, !v.isFloatingPoint { return .int(-n) }
            if let d = v.double { return Self.double(-d) }
            throw CELError("no such overload: -\(Self.typeName(v))")
        case .binary(let op, let a, let b): return try binary(op, a, b)
        case .conditional(let c, let a, let b):
            guard let cond = try eval(c).bool else { throw CELError("no such overload: conditional") }
            return try eval(cond ? a : b)
        case .macro(let name, let target, let variable, let body): return try macro(name, target, variable, body)
        case .call(let name, let target, let args): return try call(name, target, args)
        }
    }

    private func binary(_ op: String, _ a: CELExpression, _ b: CELExpression) throws -> JSON {
        // Logical operators are commutative in CEL: an error on one side is absorbed by a decisive other side.
        if op == "&&" || op == "||" {
            let decisive = op == "||"
            var failure: Error?
            for side in [a, b] {
                do {
                    guard let v = try eval(side).bool else { throw CELError("no such overload: \(op)") }
                    if v == decisive { return .bool(decisive) }
                } catch let exceeded as CELCostLimitExceeded {
                    // Abandoning the evaluation is no error the other side can absorb.
                    throw exceeded
                } catch { failure = error }
            }
            if let failure { throw failure }
            return .bool(!decisive)
        }
        let x = try eval(a), y = try eval(b)
        switch op {
        case "==", "!=", "in", "+": try cost.charge(CELCostTracker.size(y))
        default: break
        }
        switch op {
        case "==": return .bool(Self.equal(x, y))
        case "!=": return .bool(!Self.equal(x, y))
        case "<", "<=", ">", ">=":
            let c = try Self.compare(x, y)
            switch op {
            case "<": return .bool(c < 0)
            case "<=": return .bool(c <= 0)
            case ">": return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case "in":
            switch y {
            case .array(let items): return .bool(items.contains { Self.equal($0, x) })
            case .object(let m): return .bool(x.string.map { m[$0] != nil } ?? false)
            default: throw CELError("no such overload: in")
            }
        case "+", "-":
            if let time = try Self.timeArithmetic(op, x, y) { return time }
            switch (x, y) {
            case (.string(let s), .string(let t)) where op == "+": return .string(s + t)
            case (.array(let s), .array(let t)) where op == "+": return .array(s + t)
            default: return try Self.arithmetic(op, x, y)
            }
        default: return try Self.arithmetic(op, x, y)
        }
    }

    static func arithmetic(_ op: String, _ x: JSON, _ y: JSON) throws -> JSON {
        guard case .number = x, case .number = y else {
            throw CELError("no such overload: \(typeName(x)) \(op) \(typeName(y))")
        }
        if !x.isFloatingPoint && !y.isFloatingPoint, let a = x.int, let b = y.int {
            switch op {
            case "+":
                let (r, o) = a.addingReportingOverflow(b); if o { throw CELError("integer overflow") }; return .int(r)
            case "-":
                let (r, o) = a.subtractingReportingOverflow(b); if o { throw CELError("integer overflow") };
                return .int(r)
            case "*":
                let (r, o) = a.multipliedReportingOverflow(by: b); if o { throw CELError("integer overflow") };
                return .int(r)
            case "/": if b == 0 { throw CELError("division by zero") }; return .int(a / b)
            case "%": if b == 0 { throw CELError("modulus by zero") }; return .int(a % b)
            default: break
            }
        }
        guard x.isFloatingPoint == y.isFloatingPoint, let a = x.double, let b = y.double, op != "%" else {
            throw CELError("no such overload: \(typeName(x)) \(op) \(typeName(y))")
        }
        switch op {
        case "+": return double(a + b)
        case "-": return double(a - b)
        case "*": return double(a * b)
        default: return double(a / b)
        }
    }

    static func equal(_ x: JSON, _ y: JSON) -> Bool {
        if case .number = x, case .number = y { return x.double == y.double }
        return x == y
    }

    static func compare(_ x: JSON, _ y: JSON) throws -> Int {
        switch (CELTime(x), CELTime(y)) {
        case (.timestamp(let a)?, .timestamp(let b)?), (.duration(let a)?, .duration(let b)?):
            return a < b ? -1 : a > b ? 1 : 0
        default: break
        }
        switch (x, y) {
        case (.number, .number):
            let a = x.double ?? 0, b = y.double ?? 0
            return a < b ? -1 : a > b ? 1 : 0
        case (.string(let a), .string(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        default: throw CELError("no such overload: \(typeName(x)) < \(typeName(y))")
        }
    }

    private func macro(_ name: String, _ target: CELExpression, _ variable: String, _ body: CELExpression) throws
        -> JSON
    {
        let collection = try eval(target)
        let items: [JSON]
        switch collection {
        case .array(let a): items = a
        case .object(let m): items = m.keys.sorted().map { .string($0) }
        default: throw CELError("no such overload: \(name)")
        }
        func apply(_ item: JSON) throws -> JSON {
            try cost.charge(1)
            var inner = self
            inner.variables[variable] = item
            return try inner.eval(body)
        }
        func truth(_ item: JSON) throws -> Bool {
            guard let b = try apply(item).bool else { throw CELError("no such overload: \(name) predicate") }
            return b
        }
        switch name {
        case "all": return .bool(try items.allSatisfy(truth))
        case "exists": return .bool(try items.contains(where: truth))
        case "exists_one": return .bool(try items.filter(truth).count == 1)
        case "filter": return .array(try items.filter(truth))
        default: return .array(try items.map(apply))
        }
    }

    /// Library functions whose names have a namespace (`ip.isCanonical(s)`): parsed as a call on an
    /// identifier, which is no variable.
    static let qualifiedFunctions: Set<String> = ["ip.isCanonical"]

    private func call(_ name: String, _ targetExpr: CELExpression?, _ argExprs: [CELExpression]) throws -> JSON {
        if case .identifier(let space)? = targetExpr, variables[space] == nil,
            Self.qualifiedFunctions.contains("\(space).\(name)")
        {
            return try call("\(space).\(name)", nil, argExprs)
        }
        let target = try targetExpr.map(eval)
        let args = try argExprs.map(eval)
        if let value = try regexFunction(name, target: target, args: args) { return value }
        if let s = target?.string { try cost.charge(CELCostTracker.traversal(s)) }
        func string(_ v: JSON?) throws -> String {
            guard let s = v?.string else { throw CELError("no such overload: \(name)") }
            return s
        }
        switch (name, target, args.count) {
        case ("size", nil, 1), ("size", .some, 0):
            let v = target ?? args[0]
            switch v {
            case .string(let s): return .int(Int64(s.unicodeScalars.count))
            case .array(let a): return .int(Int64(a.count))
            case .object(let m): return .int(Int64(m.count))
            default: throw CELError("no such overload: size(\(Self.typeName(v)))")
            }
        case ("startsWith", .some, 1): return .bool(try string(target).hasPrefix(try string(args[0])))
        case ("endsWith", .some, 1): return .bool(try string(target).hasSuffix(try string(args[0])))
        case ("contains", .some, 1): return .bool(try string(target).contains(try string(args[0])))
        case ("lowerAscii", .some, 0): return .string(try string(target).lowercased())
        case ("upperAscii", .some, 0): return .string(try string(target).uppercased())
        case ("trim", .some, 0): return .string(try string(target).trimmingCharacters(in: .whitespacesAndNewlines))
        case ("indexOf", .some, 1):
            let s = try string(target), sub = try string(args[0])
            guard let r = s.range(of: sub) else { return .int(-1) }
            return .int(Int64(s.unicodeScalars.distance(from: s.unicodeScalars.startIndex, to: r.lowerBound)))
        case ("int", nil, 1):
            if let s = args[0].string {
                guard let n = Int64(s) else { throw CELError("cannot convert \"\(s)\" to int") }
                return .int(n)
            }
            if let d = args[0].double { return .int(Int64(d.rounded(.towardZero))) }
            throw CELError("no such overload: int")
        case ("double", nil, 1):
            if let s = args[0].string, let d = Double(s) { return Self.double(d) }
            if let d = args[0].double { return Self.double(d) }
            throw CELError("no such overload: double")
        case ("string", nil, 1):
            if let s = args[0].string { return .string(s) }
            if let time = CELTime(args[0]) { return .string(time.text) }
            return .string(args[0].text)
        default:
            if let value = try Self.library(name, target: target, args: args) { return value }
            throw CELError("found no matching overload for '\(name)'")
        }
    }

    /// A CEL double as a JSON number that stays one (`2.0`, not `2`, which would read back as an int).
    static func double(_ d: Double) -> JSON { .number(d.description) }

    static func typeName(_ v: JSON) -> String {
        switch v {
        case .null: return "null_type"
        case .bool: return "bool"
        case .number: return v.isFloatingPoint ? "double" : "int"
        case .string: return "string"
        case .array: return "list"
        case .object: return CELTime(v)?.typeName ?? "map"
        }
    }
}
