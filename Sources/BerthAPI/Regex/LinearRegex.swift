/// A regular expression with RE2's syntax and semantics (Go's `regexp`, which kube-apiserver uses for a
/// CustomResourceDefinition's `pattern` and for CEL's `matches`, `find` and `findAll`), matched in time
/// linear in the text: a Pike VM runs every alternative in step, so `^(a+)+$` against a long run of
/// `a`s and a `!` costs what `^a+$` does, where a backtracking engine (NSRegularExpression) takes
/// exponential time. Text written by any user of the API server is matched against these, so no value
/// may be able to tie up the server.
///
/// As RE2, it refuses what cannot run in linear time (backreferences, lookaround) with Go's
/// `regexp/syntax` errors, word for word. It works on Unicode scalars, as Go matches UTF-8 runes.
struct LinearRegex: Sendable {
    let pattern: String
    private let program: RegexProgram

    /// Compiles `pattern` as Go's `regexp.Compile` does (Perl flags: `(?i)` and friends, `\d`, `\pL`
    /// …; `^`/`$` at the text's ends unless `(?m)`).
    init(_ pattern: String) throws(RegexSyntaxError) {
        self.pattern = pattern
        let tree = try RegexParser.parse(pattern)
        guard RegexProgram.size(of: tree) <= RegexProgram.maxSize else {
            throw RegexSyntaxError(.expressionTooLarge, pattern)
        }
        program = RegexProgram(tree)
    }

    /// Whether the pattern matches anywhere in `text` (Go's `MatchString`: an unanchored search).
    func matches(_ text: String) -> Bool {
        program.search(Array(text.unicodeScalars), from: 0, earliest: true) != nil
    }

    /// The leftmost-first match in `text`, nil when there is none (Go's `FindString`, which answers ""
    /// for both an empty match and none).
    func firstMatch(in text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        return program.search(scalars, from: 0, earliest: false).map { Self.string(scalars[$0]) }
    }

    /// The successive non-overlapping matches in `text`, at most `limit` of them when it is not
    /// negative (Go's `FindAllString(text, limit)`). An empty match right after a match is skipped, as Go
    /// does, so `a*` in "baaab" finds "", "aaa" and "" (not the empty match at the second `b`).
    func allMatches(in text: String, limit: Int = -1) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var found: [String] = []
        var position = 0
        var previousEnd = -1
        while position <= scalars.count, limit < 0 || found.count < limit {
            guard let match = program.search(scalars, from: position, earliest: false) else { break }
            var accept = true
            if match.isEmpty && match.upperBound == position {
                // An empty match: move on one scalar so the search advances.
                accept = match.lowerBound != previousEnd
                position += 1
            } else {
                position = match.upperBound
            }
            previousEnd = match.upperBound
            if accept { found.append(Self.string(scalars[match])) }
        }
        return found
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// Why a pattern is not a regular expression RE2 accepts, in the words of Go's `regexp/syntax.Error`:
/// `error parsing regexp: <code>: `<the offending text>``.
struct RegexSyntaxError: Error, Equatable, CustomStringConvertible {
    /// Go's `syntax.ErrorCode`s, with their text.
    enum Code: String, Sendable {
        case invalidCharacterClass = "invalid character class"
        case invalidCharacterRange = "invalid character class range"
        case invalidEscape = "invalid escape sequence"
        case invalidNamedCapture = "invalid named capture"
        case invalidPerlOperation = "invalid or unsupported Perl syntax"
        case invalidRepeatOperation = "invalid nested repetition operator"
        case invalidRepeatSize = "invalid repeat count"
        case missingBracket = "missing closing ]"
        case missingParenthesis = "missing closing )"
        case missingRepeatArgument = "missing argument to repetition operator"
        case trailingBackslash = "trailing backslash at end of expression"
        case unexpectedParenthesis = "unexpected )"
        case nestingDepth = "expression nests too deeply"
        case expressionTooLarge = "expression too large"
    }
    var code: Code
    /// The part of the pattern at fault (the whole pattern for an unbalanced parenthesis).
    var expression: String

    init(_ code: Code, _ expression: String) {
        self.code = code
        self.expression = expression
    }

    var description: String { "error parsing regexp: \(code.rawValue): `\(expression)`" }
}
