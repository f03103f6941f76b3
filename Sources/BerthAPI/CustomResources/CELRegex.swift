import Synchronization

/// CEL's regular-expression functions: `matches` (standard CEL) and Kubernetes' `find` and `findAll`
/// (k8s.io/apiserver/pkg/cel/library/regex.go), with RE2 semantics through LinearRegex, so a value
/// cannot make a rule take exponential time.
extension CELEvaluator {
    /// The result of regular-expression function `name`, nil when `name` with these arguments is not one.
    func regexFunction(_ name: String, target: JSON?, args: [JSON]) throws -> JSON? {
        let text: JSON?
        let pattern: JSON?
        switch (name, target, args.count) {
        case ("matches", .some, 1), ("find", .some, 1), ("findAll", .some, 1), ("findAll", .some, 2):
            (text, pattern) = (target, args[0])
        case ("matches", nil, 2): (text, pattern) = (args[0], args[1])
        default: return nil
        }
        guard let s = text?.string, let p = pattern?.string else { throw CELError("no such overload: \(name)") }
        try cost.charge(CELCostTracker.regexMatch(s, pattern: p))
        // A pattern that is not a literal is compiled here, and fails here: cel-go's error is Go's.
        let regex: LinearRegex
        do { regex = try CELRegexCache.regex(p) } catch { throw CELError(error.description) }
        switch name {
        case "matches": return .bool(regex.matches(s))
        case "find": return .string(regex.firstMatch(in: s) ?? "")
        default:
            let limit = args.count == 2 ? args[1].int.map(Int.init) : -1
            guard let limit, args.count == 1 || !args[1].isFloatingPoint else {
                throw CELError("no such overload: findAll")
            }
            return .array(regex.allMatches(in: s, limit: limit).map { .string($0) })
        }
    }
}

/// Why an expression's literal regular expression does not compile, found before the expression is
/// accepted, as upstream finds it: `matches` by cel-go's regex-literal validator (a compilation error),
/// `find` and `findAll` when the program is built with their regex optimization.
enum CELRegexLiteralError: Error, CustomStringConvertible {
    case invalidMatchesArgument
    case programInstantiation(RegexSyntaxError)

    /// The error's detail as kube-apiserver words it under the rule's field.
    var description: String {
        switch self {
        case .invalidMatchesArgument: return "compilation failed: ERROR: invalid matches argument"
        case .programInstantiation(let error): return "program instantiation failed: \(error)"
        }
    }

    /// Throws for the first literal pattern in `expression` that is not an RE2 regular expression.
    static func check(_ expression: CELExpression) throws(CELRegexLiteralError) {
        switch expression {
        case .literal, .identifier: return
        case .list(let items): for item in items { try check(item) }
        case .select(let e, _), .has(let e, _), .unary(_, let e): try check(e)
        case .index(let a, let b), .binary(_, let a, let b):
            try check(a)
            try check(b)
        case .macro(_, let target, _, let body):
            try check(target)
            try check(body)
        case .conditional(let a, let b, let c):
            try check(a)
            try check(b)
            try check(c)
        case .call(let name, let target, let args):
            if let target { try check(target) }
            for arg in args { try check(arg) }
            let pattern: CELExpression?
            switch (name, target != nil, args.count) {
            case ("matches", true, 1), ("find", true, 1), ("findAll", true, 1), ("findAll", true, 2):
                pattern = args[0]
            case ("matches", false, 2): pattern = args[1]
            default: pattern = nil
            }
            guard case .literal(.string(let text))? = pattern else { return }
            do { _ = try CELRegexCache.regex(text) } catch {
                throw name == "matches" ? .invalidMatchesArgument : .programInstantiation(error)
            }
        }
    }
}

/// Compiled patterns by their text: rules run for every object written and, inside a comprehension,
/// for every element, mostly with the same few literal patterns. Bounded, so patterns read from objects
/// cannot grow it without limit: full, it starts over.
enum CELRegexCache {
    static let capacity = 256
    private static let compiled = Mutex<[String: LinearRegex]>([:])

    static func regex(_ pattern: String) throws(RegexSyntaxError) -> LinearRegex {
        if let known = compiled.withLock({ $0[pattern] }) { return known }
        let regex = try LinearRegex(pattern)
        compiled.withLock {
            if $0.count >= capacity { $0.removeAll() }
            $0[pattern] = regex
        }
        return regex
    }
}
