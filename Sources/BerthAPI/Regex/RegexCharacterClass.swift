/// A set of scalars: a bracketed class, a Perl class (`\d`), a POSIX class (`[:alpha:]`) or a Unicode
/// class (`\pL`), as RE2 defines them: the Perl and POSIX classes are ASCII-only, the Unicode ones are
/// not.
struct RegexCharacterClass: Sendable {
    indirect enum Member: Sendable {
        case range(UInt32, UInt32)
        case property(RegexUnicodeProperty)
        case nested(RegexCharacterClass)
    }
    var members: [Member]
    var negated = false
    /// Under `(?i)`: a scalar is in the class when any of its case variants is.
    var foldCase = false

    init(members: [Member], negated: Bool = false, foldCase: Bool = false) {
        self.members = members
        self.negated = negated
        self.foldCase = foldCase
    }

    func contains(_ s: Unicode.Scalar) -> Bool {
        var found = includes(s)
        if !found && foldCase {
            found = RegexCaseFolding.variants(of: s).contains { $0 != s && includes($0) }
        }
        return found != negated
    }

    private func includes(_ s: Unicode.Scalar) -> Bool {
        members.contains { member in
            switch member {
            case .range(let low, let high): return (low...high).contains(s.value)
            case .property(let property): return property.contains(s)
            case .nested(let cls): return cls.contains(s)
            }
        }
    }

    func folding(_ foldCase: Bool) -> RegexCharacterClass {
        var copy = self
        copy.foldCase = foldCase
        return copy
    }

    static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "0"..."9", "A"..."Z", "a"..."z", "_": return true
        default: return false
        }
    }

    private static func ranges(_ pairs: [(Unicode.Scalar, Unicode.Scalar)], negated: Bool = false) -> Self {
        RegexCharacterClass(members: pairs.map { .range($0.0.value, $0.1.value) }, negated: negated)
    }

    /// `\d \s \w` and their complements `\D \S \W` (ASCII, as RE2's).
    static func perl(_ letter: Unicode.Scalar) -> RegexCharacterClass? {
        switch letter {
        case "d", "D": return ranges([("0", "9")], negated: letter == "D")
        case "s", "S": return ranges([("\t", "\n"), ("\u{0C}", "\r"), (" ", " ")], negated: letter == "S")
        case "w", "W": return ranges([("0", "9"), ("A", "Z"), ("a", "z"), ("_", "_")], negated: letter == "W")
        default: return nil
        }
    }

    /// The POSIX classes RE2 knows, by name (`alpha` in `[[:alpha:]]`).
    static func posix(_ name: String) -> RegexCharacterClass? {
        switch name {
        case "alnum": return ranges([("0", "9"), ("A", "Z"), ("a", "z")])
        case "alpha": return ranges([("A", "Z"), ("a", "z")])
        case "ascii": return ranges([("\u{00}", "\u{7F}")])
        case "blank": return ranges([("\t", "\t"), (" ", " ")])
        case "cntrl": return ranges([("\u{00}", "\u{1F}"), ("\u{7F}", "\u{7F}")])
        case "digit": return ranges([("0", "9")])
        case "graph": return ranges([("!", "~")])
        case "lower": return ranges([("a", "z")])
        case "print": return ranges([(" ", "~")])
        case "punct": return ranges([("!", "/"), (":", "@"), ("[", "`"), ("{", "~")])
        case "space": return ranges([("\t", "\r"), (" ", " ")])
        case "upper": return ranges([("A", "Z")])
        case "word": return ranges([("0", "9"), ("A", "Z"), ("a", "z"), ("_", "_")])
        case "xdigit": return ranges([("0", "9"), ("A", "F"), ("a", "f")])
        default: return nil
        }
    }
}

/// A Unicode class of `\p{…}`: a general category (`L`, `Lu` …), `Any`, or one of the common scripts.
/// The standard library answers a scalar's category but not its script, so scripts are their main
/// blocks — close to, not exactly, Unicode's Scripts.txt (which Go's tables follow).
enum RegexUnicodeProperty: Sendable {
    case any
    /// One letter matches every category it begins (`L`), two letters one category (`Lu`).
    case category(String)
    case script([ClosedRange<UInt32>])

    init?(_ name: String) {
        if name == "Any" {
            self = .any
        } else if Self.categories.contains(name) {
            self = .category(name)
        } else if let blocks = Self.scripts[name] {
            self = .script(blocks)
        } else {
            return nil
        }
    }

    func contains(_ s: Unicode.Scalar) -> Bool {
        switch self {
        case .any: return true
        case .category(let name):
            let code = Self.code(s.properties.generalCategory)
            return name.count == 1 ? code.hasPrefix(name) : code == name
        case .script(let blocks): return blocks.contains { $0.contains(s.value) }
        }
    }

    /// The category names Go's `unicode.Categories` has.
    private static let categories: Set<String> = [
        "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No",
        "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    ]

    private static let scripts: [String: [ClosedRange<UInt32>]] = [
        "Latin": [
            0x41...0x5A, 0x61...0x7A, 0xAA...0xAA, 0xBA...0xBA, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x24F,
            0x1E00...0x1EFF, 0x2C60...0x2C7F, 0xA720...0xA7FF, 0xFF21...0xFF3A, 0xFF41...0xFF5A,
        ],
        "Greek": [
            0x370...0x373, 0x375...0x377, 0x37A...0x37D, 0x37F...0x37F, 0x384...0x384, 0x386...0x386,
            0x388...0x3E1, 0x3F0...0x3FF, 0x1D26...0x1D2A, 0x1F00...0x1FFE, 0x2126...0x2126,
        ],
        "Cyrillic": [0x400...0x52F, 0x1C80...0x1C8F, 0x2DE0...0x2DFF, 0xA640...0xA69F],
        "Armenian": [0x531...0x58F, 0xFB13...0xFB17],
        "Hebrew": [0x591...0x5FF, 0xFB1D...0xFB4F],
        "Arabic": [0x600...0x6FF, 0x750...0x77F, 0x8A0...0x8FF, 0xFB50...0xFDFF, 0xFE70...0xFEFF],
        "Devanagari": [0x900...0x97F, 0xA8E0...0xA8FF],
        "Thai": [0xE01...0xE5B],
        "Georgian": [0x10A0...0x10FF, 0x2D00...0x2D2F],
        "Hangul": [0x1100...0x11FF, 0x3130...0x318F, 0xA960...0xA97F, 0xAC00...0xD7AF, 0xD7B0...0xD7FF],
        "Hiragana": [0x3041...0x309F],
        "Katakana": [0x30A1...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9D],
        "Han": [
            0x2E80...0x2FDF, 0x3005...0x3007, 0x3021...0x3029, 0x3038...0x303B, 0x3400...0x4DBF,
            0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x3134F,
        ],
    ]

    private static func code(_ category: Unicode.GeneralCategory) -> String {
        switch category {
        case .uppercaseLetter: return "Lu"
        case .lowercaseLetter: return "Ll"
        case .titlecaseLetter: return "Lt"
        case .modifierLetter: return "Lm"
        case .otherLetter: return "Lo"
        case .nonspacingMark: return "Mn"
        case .spacingMark: return "Mc"
        case .enclosingMark: return "Me"
        case .decimalNumber: return "Nd"
        case .letterNumber: return "Nl"
        case .otherNumber: return "No"
        case .connectorPunctuation: return "Pc"
        case .dashPunctuation: return "Pd"
        case .openPunctuation: return "Ps"
        case .closePunctuation: return "Pe"
        case .initialPunctuation: return "Pi"
        case .finalPunctuation: return "Pf"
        case .otherPunctuation: return "Po"
        case .mathSymbol: return "Sm"
        case .currencySymbol: return "Sc"
        case .modifierSymbol: return "Sk"
        case .otherSymbol: return "So"
        case .spaceSeparator: return "Zs"
        case .lineSeparator: return "Zl"
        case .paragraphSeparator: return "Zp"
        case .control: return "Cc"
        case .format: return "Cf"
        case .surrogate: return "Cs"
        case .privateUse: return "Co"
        // Go's tables leave unassigned scalars out of every category, `C` included.
        case .unassigned: return ""
        @unknown default: return ""
        }
    }
}

/// Simple case folding, as RE2's `(?i)`: scalars are equal when their folds are. The fold of a scalar is
/// the lowercase of its uppercase where both are single scalars, so `k`, `K` and the Kelvin sign (U+212A)
/// fold alike, as do `s`, `S` and `ſ`, and `σ`, `ς` and `Σ`.
enum RegexCaseFolding {
    static func fold(_ s: Unicode.Scalar) -> Unicode.Scalar {
        lower(upper(s))
    }

    /// The scalars that fold to the same as `s` and that a class may list: itself, its fold, and the
    /// fold's uppercase and titlecase.
    static func variants(of s: Unicode.Scalar) -> [Unicode.Scalar] {
        let folded = fold(s)
        return [s, folded, upper(folded), upper(s), lower(s)]
    }

    private static func upper(_ s: Unicode.Scalar) -> Unicode.Scalar {
        single(s.properties.uppercaseMapping) ?? s
    }

    private static func lower(_ s: Unicode.Scalar) -> Unicode.Scalar {
        single(s.properties.lowercaseMapping) ?? s
    }

    private static func single(_ mapping: String) -> Unicode.Scalar? {
        let scalars = mapping.unicodeScalars
        return scalars.count == 1 ? scalars.first : nil
    }
}
