/// A regular expression read into a tree: what Go's `regexp/syntax.Parse` builds with the Perl flags
/// `regexp.Compile` passes. Capture groups are plain groups here: only whole matches are asked for.
indirect enum RegexNode: Sendable {
    case empty
    case literal(Unicode.Scalar, foldCase: Bool)
    case characterClass(RegexCharacterClass)
    case anyScalar(includingNewline: Bool)
    case assertion(RegexAssertion)
    case concatenation([RegexNode])
    case alternation([RegexNode])
    /// `max` nil: unbounded. `counted`: written with braces (`{n,m}`), which RE2 limits.
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool, counted: Bool)
}

/// The empty-width assertions. Word boundaries look at ASCII word characters only, as RE2's do.
enum RegexAssertion: Sendable {
    case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary
}

/// The flags `(?imsU)` set, which last to the end of the group that sets them.
struct RegexFlags {
    var foldCase = false
    var multiLine = false
    var dotMatchesNewline = false
    var ungreedy = false
}

/// Recursive descent over the pattern's scalars. The errors carry the offending text as Go's parser
/// slices it, so a refusal reads exactly as kube-apiserver's.
struct RegexParser {
    /// RE2's limit on `{n,m}` counts, also applied to their product when nested (Go's `repeatIsValid`).
    static let maxRepeat = 1000
    /// Deeper nesting is refused: parsing and compiling recurse once per level, on a thread whose stack
    /// a pattern's author must not be able to exhaust (Go allows 1000, on goroutine stacks that grow).
    static let maxDepth = 100

    private let source: [Unicode.Scalar]
    private let whole: String
    private var at = 0
    private var flags = RegexFlags()
    private var depth = 0

    private init(_ pattern: String) {
        source = Array(pattern.unicodeScalars)
        whole = pattern
    }

    static func parse(_ pattern: String) throws(RegexSyntaxError) -> RegexNode {
        var parser = RegexParser(pattern)
        let tree = try parser.alternation()
        guard parser.at == parser.source.count else {
            // Only an unbalanced `)` stops the top-level alternation early.
            throw RegexSyntaxError(.unexpectedParenthesis, pattern)
        }
        return tree
    }

    private var atEnd: Bool { at >= source.count }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        at + offset < source.count ? source[at + offset] : nil
    }
    private func text(_ from: Int, _ to: Int) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: source[from..<min(to, source.count)])
        return String(view)
    }

    // MARK: structure

    private mutating func alternation() throws(RegexSyntaxError) -> RegexNode {
        var branches = [try concatenation()]
        while peek() == "|" {
            at += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func concatenation() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        // Where the previous repetition operator began, when the previous token was one: RE2 refuses
        // stacked operators (`a**`), whose meaning in Perl (`a++` possessive) it does not have.
        var previousRepeat: Int?
        while let c = peek(), c != "|", c != ")" {
            let start = at
            switch c {
            case "*", "+", "?":
                at += 1
                let bounds: (Int, Int?) = c == "*" ? (0, nil) : c == "+" ? (1, nil) : (0, 1)
                try repeatLast(&items, bounds, counted: false, operatorStart: start, previousRepeat)
                previousRepeat = start
                continue
            case "{":
                if let (low, high, end) = braces() {
                    at = end
                    if low > Self.maxRepeat || (high ?? 0) > Self.maxRepeat || high.map({ low > $0 }) ?? false {
                        throw RegexSyntaxError(.invalidRepeatSize, text(start, at))
                    }
                    try repeatLast(&items, (low, high), counted: true, operatorStart: start, previousRepeat)
                    previousRepeat = start
                    continue
                }
                at += 1
                items.append(.literal("{", foldCase: flags.foldCase))
            case "(":
                if let group = try group() { items.append(group) }
            case "[":
                items.append(.characterClass(try characterClass()))
            case "^":
                at += 1
                items.append(.assertion(flags.multiLine ? .beginLine : .beginText))
            case "$":
                at += 1
                items.append(.assertion(flags.multiLine ? .endLine : .endText))
            case ".":
                at += 1
                items.append(.anyScalar(includingNewline: flags.dotMatchesNewline))
            case "\\":
                items += try topLevelEscape()
            default:
                at += 1
                items.append(.literal(c, foldCase: flags.foldCase))
            }
            previousRepeat = nil
        }
        return items.count == 1 ? items[0] : items.isEmpty ? .empty : .concatenation(items)
    }

    /// Applies a repetition operator (already consumed, its lazy `?` not yet) to the last item.
    private mutating func repeatLast(
        _ items: inout [RegexNode], _ bounds: (Int, Int?), counted: Bool, operatorStart: Int, _ previousRepeat: Int?
    ) throws(RegexSyntaxError) {
        var greedy = !flags.ungreedy
        if peek() == "?" {
            at += 1
            greedy.toggle()
        }
        if let previousRepeat {
            throw RegexSyntaxError(.invalidRepeatOperation, text(previousRepeat, at))
        }
        guard let last = items.popLast() else {
            throw RegexSyntaxError(.missingRepeatArgument, text(operatorStart, at))
        }
        let node = RegexNode.repetition(last, min: bounds.0, max: bounds.1, greedy: greedy, counted: counted)
        if counted, bounds.0 >= 2 || (bounds.1 ?? 0) >= 2, !Self.repeatIsValid(node, Self.maxRepeat) {
            throw RegexSyntaxError(.invalidRepeatSize, text(operatorStart, at))
        }
        items.append(node)
    }

    /// Whether nested counted repetitions stay within `limit` copies in all (Go's `repeatIsValid`):
    /// `(a{500}){500}` would compile to 250,000 copies of `a`.
    private static func repeatIsValid(_ node: RegexNode, _ limit: Int) -> Bool {
        switch node {
        case .repetition(let body, let low, let high, _, let counted):
            var limit = limit
            if counted {
                let most = high ?? low
                if most > limit { return false }
                if most > 0 { limit /= most }
            }
            return repeatIsValid(body, limit)
        case .concatenation(let items), .alternation(let items):
            return items.allSatisfy { repeatIsValid($0, limit) }
        default: return true
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` at the cursor: the bounds and where it ends; nil when the brace is not
    /// one (then it is a literal `{`, as in Go). Counts too large to read come back over the limit.
    private func braces() -> (Int, Int?, Int)? {
        var i = at + 1
        func number() -> Int? {
            let start = i
            while i < source.count, ("0"..."9").contains(source[i]) { i += 1 }
            guard i > start else { return nil }
            // Go reads no leading zeros (`{01}` is literal text).
            if i - start >= 2 && source[start] == "0" { return nil }
            return i - start > 8 ? Int.max : Int(text(start, i))
        }
        guard let low = number() else { return nil }
        var high: Int? = low
        if i < source.count, source[i] == "," {
            i += 1
            high = i < source.count && source[i] == "}" ? nil : number()
            if high == nil && (i >= source.count || source[i] != "}") { return nil }
        }
        guard i < source.count, source[i] == "}" else { return nil }
        return (low, high, i + 1)
    }

    /// A group at `(`: capturing, named, non-capturing with flags, or a bare flag setting (nil), which
    /// changes the flags until the end of the enclosing group.
    private mutating func group() throws(RegexSyntaxError) -> RegexNode? {
        let start = at
        at += 1
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw RegexSyntaxError(.nestingDepth, whole) }
        let enclosing = flags
        if peek() == "?" {
            if peek(1) == "<" || (peek(1) == "P" && peek(2) == "<") {
                // `(?P<name>…)` or `(?<name>…)`. Lookbehind, `(?<=` and `(?<!`, fails here as in Go.
                let nameStart = at + (peek(1) == "P" ? 3 : 2)
                guard let close = source[nameStart...].firstIndex(of: ">") else {
                    throw RegexSyntaxError(.invalidNamedCapture, text(start, source.count))
                }
                let name = source[nameStart..<close]
                guard !name.isEmpty, name.allSatisfy(RegexCharacterClass.isWordCharacter) else {
                    throw RegexSyntaxError(.invalidNamedCapture, text(start, close + 1))
                }
                at = close + 1
            } else {
                at += 1
                var changed = flags
                var negated = false
                var sawFlag = false
                scan: while let c = peek() {
                    at += 1
                    switch c {
                    case "i": changed.foldCase = !negated; sawFlag = true
                    case "m": changed.multiLine = !negated; sawFlag = true
                    case "s": changed.dotMatchesNewline = !negated; sawFlag = true
                    case "U": changed.ungreedy = !negated; sawFlag = true
                    case "-":
                        if negated { break scan }
                        negated = true
                        sawFlag = false
                    case ":", ")":
                        if negated && !sawFlag { break scan }
                        flags = changed
                        if c == ")" { return nil }
                        return try groupBody(restoring: enclosing)
                    default: break scan
                    }
                }
                // Lookahead (`(?=`, `(?!`) and every other Perl extension RE2 lacks.
                throw RegexSyntaxError(.invalidPerlOperation, text(start, at))
            }
        }
        return try groupBody(restoring: enclosing)
    }

    private mutating func groupBody(restoring enclosing: RegexFlags) throws(RegexSyntaxError) -> RegexNode {
        let body = try alternation()
        guard peek() == ")" else { throw RegexSyntaxError(.missingParenthesis, whole) }
        at += 1
        flags = enclosing
        return body
    }

    // MARK: escapes

    /// An escape outside a class: an assertion, a class, quoted text (`\Q…\E`) or one scalar.
    private mutating func topLevelEscape() throws(RegexSyntaxError) -> [RegexNode] {
        let start = at
        switch peek(1) {
        case "A": at += 2; return [.assertion(.beginText)]
        case "z": at += 2; return [.assertion(.endText)]
        case "b": at += 2; return [.assertion(.wordBoundary)]
        case "B": at += 2; return [.assertion(.notWordBoundary)]
        case "C":
            // Any byte: meaningless on scalars, and refused by Go as well.
            throw RegexSyntaxError(.invalidEscape, text(start, start + 2))
        case "Q":
            at += 2
            var quoted: [RegexNode] = []
            while let c = peek(), !(c == "\\" && peek(1) == "E") {
                quoted.append(.literal(c, foldCase: flags.foldCase))
                at += 1
            }
            if !atEnd { at += 2 }
            return quoted
        case "p", "P":
            return [.characterClass(try unicodeClass())]
        default:
            if let c = peek(1), let perl = RegexCharacterClass.perl(c) {
                at += 2
                return [.characterClass(perl.folding(flags.foldCase))]
            }
            return [.literal(try escapedScalar(), foldCase: flags.foldCase)]
        }
    }

    /// The scalar an escape at `\` stands for (Go's `parseEscape`): punctuation, an octal or hex code,
    /// or a control character. A digit that is not octal is a backreference, which RE2 refuses.
    private mutating func escapedScalar() throws(RegexSyntaxError) -> Unicode.Scalar {
        let start = at
        at += 1
        guard let c = peek() else { throw RegexSyntaxError(.trailingBackslash, "") }
        at += 1
        func invalid() -> RegexSyntaxError { RegexSyntaxError(.invalidEscape, text(start, at)) }
        func octal(_ s: Unicode.Scalar?) -> UInt32? {
            guard let s, ("0"..."7").contains(s) else { return nil }
            return s.value - 48
        }
        switch c {
        case "1"..."7", "0":
            // `\1` alone is a backreference; `\12` (or `\0…`) is an octal code.
            if c != "0" && octal(peek()) == nil { throw invalid() }
            var value = c.value - 48
            for _ in 0..<2 {
                guard let digit = octal(peek()) else { break }
                value = value * 8 + digit
                at += 1
            }
            return Unicode.Scalar(value)!
        case "x":
            var value: UInt32 = 0
            if peek() == "{" {
                at += 1
                var digits = 0
                while let d = peek(), let v = hexValue(d) {
                    value = value &* 16 &+ v
                    digits += 1
                    at += 1
                    if value > 0x10FFFF { break }
                }
                guard digits > 0, peek() == "}", value <= 0x10FFFF else {
                    if !atEnd { at += 1 }
                    throw invalid()
                }
                at += 1
            } else {
                for _ in 0..<2 {
                    guard let d = peek(), let v = hexValue(d) else {
                        if !atEnd { at += 1 }
                        throw invalid()
                    }
                    value = value * 16 + v
                    at += 1
                }
            }
            guard let scalar = Unicode.Scalar(value) else { throw invalid() }
            return scalar
        case "a": return "\u{07}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        default:
            // Any ASCII punctuation stands for itself; letters and digits are reserved.
            guard c.isASCII, c == "_" || !RegexCharacterClass.isWordCharacter(c) else { throw invalid() }
            return c
        }
    }

    private func hexValue(_ s: Unicode.Scalar) -> UInt32? {
        switch s {
        case "0"..."9": return s.value - 48
        case "a"..."f": return s.value - 87
        case "A"..."F": return s.value - 55
        default: return nil
        }
    }

    // MARK: classes

    /// `\pL`, `\p{Greek}`, `\PL`, `\p{^Greek}` at `\`.
    private mutating func unicodeClass() throws(RegexSyntaxError) -> RegexCharacterClass {
        let start = at
        var negated = peek(1) == "P"
        at += 2
        var name: String
        if peek() == "{" {
            guard let close = source[at...].firstIndex(of: "}") else {
                throw RegexSyntaxError(.invalidCharacterRange, text(start, source.count))
            }
            name = text(at + 1, close)
            at = close + 1
        } else {
            name = atEnd ? "" : text(at, at + 1)
            if !atEnd { at += 1 }
        }
        if name.hasPrefix("^") {
            negated.toggle()
            name.removeFirst()
        }
        guard let property = RegexUnicodeProperty(name) else {
            throw RegexSyntaxError(.invalidCharacterRange, text(start, at))
        }
        var cls = RegexCharacterClass(members: [.property(property)], foldCase: flags.foldCase)
        cls.negated = negated
        return cls
    }

    /// A bracketed class at `[` (Go's `parseClass`): a `]` first is literal, `-` is literal first, last
    /// or after a range, POSIX `[:alpha:]` and Perl/Unicode classes may appear inside.
    private mutating func characterClass() throws(RegexSyntaxError) -> RegexCharacterClass {
        let start = at
        at += 1
        var cls = RegexCharacterClass(members: [], foldCase: flags.foldCase)
        if peek() == "^" {
            cls.negated = true
            at += 1
        }
        var first = true
        while let c = peek(), c != "]" || first {
            first = false
            if c == "[", peek(1) == ":", let posix = try posixClass() {
                cls.members.append(.nested(posix))
                continue
            }
            if c == "\\", let e = peek(1) {
                if e == "p" || e == "P" {
                    cls.members.append(.nested(try unicodeClass()))
                    continue
                }
                if let perl = RegexCharacterClass.perl(e) {
                    at += 2
                    cls.members.append(.nested(perl))
                    continue
                }
            }
            let rangeStart = at
            let low = try classScalar(classStart: start)
            var high = low
            if peek() == "-", let next = peek(1), next != "]" {
                at += 1
                high = try classScalar(classStart: start)
                guard low <= high else {
                    throw RegexSyntaxError(.invalidCharacterRange, text(rangeStart, at))
                }
            }
            cls.members.append(.range(low.value, high.value))
        }
        guard !atEnd else { throw RegexSyntaxError(.missingBracket, text(start, source.count)) }
        at += 1
        return cls
    }

    private mutating func classScalar(classStart: Int) throws(RegexSyntaxError) -> Unicode.Scalar {
        guard let c = peek() else { throw RegexSyntaxError(.missingBracket, text(classStart, source.count)) }
        if c == "\\" { return try escapedScalar() }
        at += 1
        return c
    }

    /// `[:alpha:]` or `[:^alpha:]` at `[`; nil when no `:]` closes it (then `[` is an ordinary member).
    private mutating func posixClass() throws(RegexSyntaxError) -> RegexCharacterClass? {
        var close = at + 2
        while close + 1 < source.count, !(source[close] == ":" && source[close + 1] == "]") { close += 1 }
        guard close + 1 < source.count else { return nil }
        var name = text(at + 2, close)
        let negated = name.hasPrefix("^")
        if negated { name.removeFirst() }
        guard var cls = RegexCharacterClass.posix(name) else {
            throw RegexSyntaxError(.invalidCharacterRange, text(at, close + 2))
        }
        at = close + 2
        cls.negated = negated
        return cls
    }
}
