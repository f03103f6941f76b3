@testable import BerthAPI
import Testing

/// The RE2 engine behind CRD `pattern`s and CEL's `matches`/`find`/`findAll`: Go's `regexp` answers
/// (the expected values below are what Go's MatchString, FindString and FindAllString give), Go's
/// refusals word for word, and linear time on the patterns that make backtracking engines explode.
@Suite("linear-time regular expressions")
struct LinearRegexTests {
    func matches(_ pattern: String, _ text: String) throws -> Bool {
        try LinearRegex(pattern).matches(text)
    }

    func find(_ pattern: String, _ text: String) throws -> String? {
        try LinearRegex(pattern).firstMatch(in: text)
    }

    /// The error `pattern` is refused with ("" when it compiles).
    func refusal(_ pattern: String) -> String {
        do {
            _ = try LinearRegex(pattern)
            return ""
        } catch { return error.description }
    }

    @Test func searchIsUnanchoredUnlessAnchorsSayOtherwise() throws {
        #expect(try matches("b", "abc"))
        #expect(try !matches("^b", "abc"))
        #expect(try !matches("b$", "abc"))
        #expect(try matches("^abc$", "abc"))
        #expect(try matches("", "anything"))
        // Without (?m), ^ and $ are the text's ends, and $ does not match before a final newline.
        #expect(try !matches("^b", "a\nb"))
        #expect(try !matches("a$", "a\n"))
        #expect(try matches("(?m)^b$", "a\nb\nc"))
        #expect(try matches(#"\Aab\z"#, "ab"))
        #expect(try !matches(#"(?m)a\z"#, "a\n"))
    }

    @Test func alternationIsLeftmostFirstNotLongest() throws {
        #expect(try find("a|ab", "ab") == "a")
        #expect(try find("ab|a", "ab") == "ab")
        #expect(try find("(a|ab)(c|bcd)", "abcd") == "abcd")
        // The first alternative that leads to a match, not the longest: "ab" would go further.
        #expect(try find("(a|ab)(c|bcd)?", "abc") == "a")
        // Leftmost wins over earlier alternatives that match later.
        #expect(try find("x|b", "abx") == "b")
        #expect(try find("z", "abc") == nil)
    }

    @Test func repetitionIsGreedyUnlessLazy() throws {
        #expect(try find("a+", "baaab") == "aaa")
        #expect(try find("a+?", "baaab") == "a")
        #expect(try find("a*?b", "aaab") == "aaab")
        #expect(try find("<.*>", "<a><b>") == "<a><b>")
        #expect(try find("<.*?>", "<a><b>") == "<a>")
        #expect(try find("a{2}", "aaaa") == "aa")
        #expect(try find("a{2,}", "aaaa") == "aaaa")
        #expect(try find("a{1,3}", "aaaa") == "aaa")
        #expect(try find("a{1,3}?", "aaaa") == "a")
        #expect(try find("a??b", "ab") == "ab")
        // (?U) swaps greedy and lazy.
        #expect(try find("(?U)a+", "aaa") == "a")
        #expect(try find("(?U)a+?", "aaa") == "aaa")
        // A brace that is no repetition is literal text, as in Go.
        #expect(try find("a{,2}", "a{,2}") == "a{,2}")
        #expect(try find("x{", "x{") == "x{")
    }

    @Test func findAllSkipsAnEmptyMatchRightAfterAMatch() throws {
        #expect(try LinearRegex("a*").allMatches(in: "baaab") == ["", "aaa", ""])
        #expect(try LinearRegex("[0-9]+").allMatches(in: "a123b456c789") == ["123", "456", "789"])
        #expect(try LinearRegex("[0-9]+").allMatches(in: "a123b456c789", limit: 2) == ["123", "456"])
        #expect(try LinearRegex("x").allMatches(in: "abc").isEmpty)
        #expect(try LinearRegex("").allMatches(in: "ab") == ["", "", ""])
    }

    @Test func classesEscapesAndDot() throws {
        #expect(try find("[a-c]+", "xxabcabd") == "abcab")
        #expect(try find("[^a-c]+", "abcxyzab") == "xyz")
        #expect(try find("[]a]+", "]a]b") == "]a]")
        #expect(try find("[a-]+", "a-a-b") == "a-a-")
        #expect(try find(#"\d+"#, "ab 123 c") == "123")
        #expect(try find(#"\D+"#, "12ab3") == "ab")
        #expect(try find(#"\w+"#, "  héllo") == "h")
        #expect(try find(#"\s+"#, "a \t\nb") == " \t\n")
        #expect(try find(#"[\d\s]+"#, "x1 2y") == "1 2")
        #expect(try find("[[:alpha:]]+", "12abC3") == "abC")
        #expect(try find("[[:^digit:]]+", "12ab3") == "ab")
        #expect(try find(#"\x41\x{42}\101\n?"#, "ABA") == "ABA")
        #expect(try find(#"\Q.*\E+"#, "a.**") == ".**")
        #expect(try find(#"\.\+\_"#, "x.+_") == ".+_")
        #expect(try !matches("a.c", "a\nc"))
        #expect(try matches("(?s)a.c", "a\nc"))
        // [^…] matches a newline, as Go's classes do.
        #expect(try matches("a[^x]c", "a\nc"))
    }

    @Test func wordBoundariesAreAsciiWordCharacters() throws {
        #expect(try find(#"\bcat\b"#, "concat cat") == "cat")
        #expect(try !matches(#"\bcat\b"#, "concatenate"))
        #expect(try find(#"\Bcat"#, "cat concat") == "cat")
        #expect(try matches(#"^\b$"#, "") == false)
    }

    @Test func caseInsensitivityFoldsUnicodeAndLastsToTheGroupsEnd() throws {
        #expect(try matches("(?i)hello", "HeLLo"))
        #expect(try matches("(?i)[a-z]+$", "ABC"))
        #expect(try matches("(?i)σ", "Σ") && matches("(?i)σ", "ς"))
        #expect(try matches("(?i)k", "\u{212A}"))
        #expect(try !matches("(?i:a)b", "AB"))
        #expect(try matches("(?i:a)b", "Ab"))
        #expect(try matches("a(?i)b|c", "aB") && matches("a(?i)b|c", "C"))
        #expect(try !matches("(?i)a(?-i)b", "AB"))
    }

    @Test func textIsUnicodeScalarsAndUnicodeClassesWork() throws {
        #expect(try find("^.$", "é") == "é")
        #expect(try find("^..$", "e\u{301}") == "e\u{301}")
        #expect(try find(#"\pL+"#, "12日本語!") == "日本語")
        #expect(try find(#"\p{Greek}+"#, "abc αβγ def") == "αβγ")
        #expect(try find(#"\PL+"#, "ab12cd") == "12")
        #expect(try find(#"\p{^L}+"#, "ab12cd") == "12")
        #expect(try find(#"[\p{Lu}\d]+"#, "abC1Dx") == "C1D")
        #expect(try find(#"\p{Han}+"#, "x漢字y") == "漢字")
    }

    @Test func groupsOfEveryKindGroup() throws {
        #expect(try find("(ab)+", "ababx") == "abab")
        #expect(try find("(?:ab)+", "ababx") == "abab")
        #expect(try find("(?P<word>ab)+c", "ababc") == "ababc")
        #expect(try find("(?<word>ab)c", "abc") == "abc")
        #expect(try find("a(|b)c", "ac") == "ac")
        #expect(try find("(a*)*b", "aab") == "aab")
    }

    @Test func whatRE2RefusesIsRefusedInGosWords() {
        #expect(refusal(#"(a)\1"#) == #"error parsing regexp: invalid escape sequence: `\1`"#)
        #expect(refusal("a(?=b)") == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`")
        #expect(refusal("a(?!b)") == "error parsing regexp: invalid or unsupported Perl syntax: `(?!`")
        #expect(refusal("(?<=a)b") == "error parsing regexp: invalid named capture: `(?<=a)b`")
        #expect(refusal("(?<!a)b") == "error parsing regexp: invalid named capture: `(?<!a)b`")
        #expect(refusal("a{1001}") == "error parsing regexp: invalid repeat count: `{1001}`")
        #expect(refusal("a{2,1}") == "error parsing regexp: invalid repeat count: `{2,1}`")
        #expect(refusal("(a{500}){500}") == "error parsing regexp: invalid repeat count: `{500}`")
        #expect(refusal("a{1000}") == "")
        #expect(refusal("+") == "error parsing regexp: missing argument to repetition operator: `+`")
        #expect(refusal("(*)") == "error parsing regexp: missing argument to repetition operator: `*`")
        #expect(refusal("a**") == "error parsing regexp: invalid nested repetition operator: `**`")
        #expect(refusal("x++") == "error parsing regexp: invalid nested repetition operator: `++`")
        #expect(refusal("(") == "error parsing regexp: missing closing ): `(`")
        #expect(refusal("a)") == "error parsing regexp: unexpected ): `a)`")
        #expect(refusal("[a") == "error parsing regexp: missing closing ]: `[a`")
        #expect(refusal("[z-a]") == "error parsing regexp: invalid character class range: `z-a`")
        #expect(refusal("[[:foo:]]") == "error parsing regexp: invalid character class range: `[:foo:]`")
        #expect(refusal(#"\p{Klingon}"#) == #"error parsing regexp: invalid character class range: `\p{Klingon}`"#)
        #expect(refusal(#"a\"#) == "error parsing regexp: trailing backslash at end of expression: ``")
        #expect(refusal(#"\C"#) == #"error parsing regexp: invalid escape sequence: `\C`"#)
        #expect(refusal(#"\Z"#) == #"error parsing regexp: invalid escape sequence: `\Z`"#)
        #expect(refusal("(?P<>a)") == "error parsing regexp: invalid named capture: `(?P<>`")
        #expect(refusal("(?i") == "error parsing regexp: invalid or unsupported Perl syntax: `(?i`")
        #expect(refusal(String(repeating: "(", count: 200) + String(repeating: ")", count: 200)).contains("nests"))
    }

    @Test func backtrackingBombsFinishInLinearTime() throws {
        // Each is exponential for a backtracking engine on this text; the answers are Go's.
        let text = String(repeating: "a", count: 10_000) + "!"
        #expect(try !matches("^(a+)+$", text))
        #expect(try !matches("^(a|a)*$", text))
        #expect(try !matches("^(a|aa)+$", text))
        #expect(try !matches("^(a*)*b$", text))
        #expect(try matches("(a+)+!", text))
        #expect(try find("(a+)+!", "xx" + text)?.count == 10_001)
        #expect(try !matches(#"^([^@\s]+)+@"#, text))
    }
}
