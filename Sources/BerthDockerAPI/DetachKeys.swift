/// docker's detach sequence (`--detach-keys`, default ctrl-p,ctrl-q): typed on an attached terminal's
/// input, it ends the attachment and leaves the process running. The bytes of a partial match are held
/// back until the next byte shows whether the sequence goes on (docker's escape proxy does the same).
struct DetachKeys: Sendable {
    let sequence: [UInt8]
    private var matched = 0

    static let standard = DetachKeys(sequence: [16, 17])

    init(sequence: [UInt8]) { self.sequence = sequence }

    /// `ctrl-p,ctrl-q`, `a,ctrl-@`: each key a single character or `ctrl-` and one of a-z @ [ \ ] ^ _.
    init(parsing text: String?) throws(DockerAPIError) {
        guard let text, !text.isEmpty else {
            self = .standard
            return
        }
        var bytes: [UInt8] = []
        for key in text.split(separator: ",", omittingEmptySubsequences: false) {
            let lower = key.lowercased()
            if lower.hasPrefix("ctrl-"), lower.utf8.count == 6, let c = lower.utf8.last {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): bytes.append(c - UInt8(ascii: "a") + 1)
                case UInt8(ascii: "@"): bytes.append(0)
                case UInt8(ascii: "["): bytes.append(27)
                case UInt8(ascii: "\\"): bytes.append(28)
                case UInt8(ascii: "]"): bytes.append(29)
                case UInt8(ascii: "^"): bytes.append(30)
                case UInt8(ascii: "_"): bytes.append(31)
                default: throw .badRequest("Unknown character: '\(key)'")
                }
            } else if key.utf8.count == 1 {
                bytes.append(key.utf8.first!)
            } else {
                throw .badRequest("Unknown character: '\(key)'")
            }
        }
        self.init(sequence: bytes)
    }

    /// The bytes to pass on, and whether the sequence was completed (what follows it is dropped).
    mutating func filter(_ input: [UInt8]) -> (forward: [UInt8], detach: Bool) {
        var out: [UInt8] = []
        for byte in input {
            if byte == sequence[matched] {
                matched += 1
                if matched == sequence.count { return (out, true) }
                continue
            }
            // A broken match: what was held back goes on, and this byte may start a new one.
            out += sequence[0..<matched]
            matched = 0
            if byte == sequence[0] { matched = 1 } else { out.append(byte) }
        }
        return (out, false)
    }
}
