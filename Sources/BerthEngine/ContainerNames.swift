#if canImport(Glibc)
import Glibc
#endif

/// Container IDs and names as docker makes and checks them.
public enum ContainerNames {
    /// 64 random hex digits (docker's ID), never all digits (so a short ID is never read as a number).
    /// Also the shape of exec IDs.
    public static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            let id = (0..<4).map { _ in
                let hex = String(generator.next() as UInt64, radix: 16)
                return String(repeating: "0", count: 16 - hex.count) + hex
            }.joined()
            if id.prefix(12).contains(where: { $0.isLetter }) { return id }
        }
    }

    /// docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    static func validate(_ name: String) throws(EngineError) {
        let bytes = Array(name.utf8)
        func alnum(_ b: UInt8) -> Bool { (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) }
        guard bytes.count >= 2, alnum(bytes[0]),
            bytes.dropFirst().allSatisfy({ alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 })
        else {
            throw .invalidArgument(
                what: "container name",
                reason: "Invalid container name (\(name)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        }
    }

    /// `adjective_surname`, as docker's namesgenerator, with a number appended on a clash.
    static func generate(avoiding taken: Set<String>) -> String {
        for attempt in 0..<20 {
            var name = "\(adjectives.randomElement()!)_\(surnames.randomElement()!)"
            if attempt > 2 { name += String(Int.random(in: 0...9)) }
            if !taken.contains(name) { return name }
        }
        return "berth_" + randomID().prefix(12)
    }

    static let adjectives = [
        "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful", "blissful",
        "bold", "boring", "brave", "busy", "charming", "clever", "compassionate", "competent", "condescending",
        "confident", "cool", "cranky", "crazy", "dazzling", "determined", "distracted", "dreamy", "eager",
        "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting", "fervent", "festive",
        "flamboyant", "focused", "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "great",
        "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent",
        "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest",
        "musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic",
        "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky", "quizzical", "recursing",
        "relaxed", "reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange",
        "stupefied", "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
        "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
    ]

    static let surnames = [
        "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin", "babbage",
        "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "blackwell", "bohr", "booth", "borg", "bose",
        "brahmagupta", "brattain", "brown", "carson", "chandrasekhar", "clarke", "colden", "cori", "cray",
        "curie", "darwin", "davinci", "dijkstra", "dubinsky", "easley", "einstein", "elion", "engelbart",
        "euclid", "euler", "fermat", "fermi", "feynman", "franklin", "galileo", "gates", "goldberg", "goldstine",
        "goodall", "hamilton", "hawking", "heisenberg", "hermann", "hodgkin", "hoover", "hopper", "hypatia",
        "jackson", "jang", "jennings", "jepsen", "johnson", "joliot", "jones", "kalam", "keller", "kepler",
        "khorana", "kilby", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt", "lovelace",
        "lumiere", "mahavira", "mayer", "mccarthy", "mcclintock", "meitner", "mendel", "minsky", "mirzakhani",
        "morse", "murdock", "napier", "nash", "neumann", "newton", "nobel", "noether", "pare", "pascal",
        "pasteur", "payne", "perlman", "pike", "poincare", "ptolemy", "raman", "ritchie", "rosalind", "saha",
        "sammet", "shannon", "shockley", "sinoussi", "snyder", "spence", "stonebraker", "swanson", "tesla",
        "thompson", "torvalds", "turing", "varahamihira", "visvesvaraya", "wescoff", "williams", "wilson", "wing",
        "wozniak", "wright", "yalow", "yonath",
    ]
}
