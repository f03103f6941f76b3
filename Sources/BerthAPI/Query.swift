/// A request's query string decoded as Go's `url.ParseQuery` decodes it, which is what kube-apiserver
/// reads and what client-go writes: `+` is a space (Go's `url.Values.Encode` sends
/// `labelSelector=app+in+%28a%2Cb%29`), `%XX` is one byte, and each key and value is decoded exactly once.
/// Where a key repeats, the first value wins, as `url.Values.Get` returns it.
public enum Query {
    /// Every pair in order, repeated keys included (`command=sh&command=-c` is an exec's argv).
    public static func pairs(_ raw: String?) throws -> [(key: String, value: String)] {
        guard let raw, !raw.isEmpty else { return [] }
        return try raw.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            guard let eq = pair.firstIndex(of: "=") else { return (try unescape(pair), "") }
            return (try unescape(pair[..<eq]), try unescape(pair[pair.index(after: eq)...]))
        }
    }

    public static func parse(_ raw: String?) throws -> [String: String] {
        var out: [String: String] = [:]
        guard let raw, !raw.isEmpty else { return out }
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let (k, v): (Substring, Substring)
            if let eq = pair.firstIndex(of: "=") {
                (k, v) = (pair[..<eq], pair[pair.index(after: eq)...])
            } else {
                (k, v) = (pair, "")
            }
            let key = try unescape(k), value = try unescape(v)
            if out[key] == nil { out[key] = value }
        }
        return out
    }

    /// Go's `url.QueryUnescape`. A malformed escape is refused with 400 naming it (Go's error text),
    /// rather than dropped as `url.Values` would quietly drop the pair: a selector that silently
    /// vanished would widen a list or a delete-collection.
    public static func unescape(_ s: Substring) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            switch c {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) else {
                    let bad = String(decoding: [c] + it.prefix(2), as: UTF8.self)
                    throw APIError.badRequest("invalid query string: invalid URL escape \"\(bad)\"")
                }
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            default:
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
