/// Just enough of Kubernetes' protobuf envelope (`k8s\0` + runtime.Unknown) to read the few requests
/// typed clients insist on sending as protobuf (kubectl auth can-i's SelfSubjectAccessReview). Responses
/// are JSON, which those clients accept.
enum Protobuf {
    /// Length-delimited and varint fields of one message: field number → values.
    static func fields(_ b: ArraySlice<UInt8>) -> [Int: [ArraySlice<UInt8>]] {
        var out: [Int: [ArraySlice<UInt8>]] = [:]
        var i = b.startIndex
        func varint() -> UInt64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < b.endIndex {
                let c = b[i]; i += 1
                v |= UInt64(c & 0x7f) << shift
                if c & 0x80 == 0 { return v }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
        while i < b.endIndex {
            guard let tag = varint() else { break }
            let field = Int(tag >> 3)
            switch tag & 7 {
            case 0: guard varint() != nil else { return out }
            case 2:
                guard let n = varint(), i + Int(n) <= b.endIndex else { return out }
                out[field, default: []].append(b[i..<i + Int(n)]); i += Int(n)
            case 1: i += 8
            case 5: i += 4
            default: return out
            }
        }
        return out
    }
    static func string(_ f: [Int: [ArraySlice<UInt8>]], _ n: Int) -> String? {
        f[n]?.first.map { String(decoding: $0, as: UTF8.self) }
    }

    /// A SelfSubjectAccessReview in protobuf → its JSON form.
    static func selfSubjectAccessReview(_ body: [UInt8]) -> JSON? {
        guard body.count > 4, body[0..<4] == [0x6b, 0x38, 0x73, 0x00] else { return nil }
        let unknown = fields(body[4...])
        guard let raw = unknown[2]?.first else { return nil }
        let review = fields(raw)
        guard let spec = review[2]?.first.map(fields) else { return nil }
        var s: JSON = [:]
        if let ra = spec[1]?.first.map(fields) {
            var a: JSON = [:]
            for (n, k) in [(1, "namespace"), (2, "verb"), (3, "group"), (4, "version"), (5, "resource"), (6, "subresource"), (7, "name")] {
                if let v = string(ra, n) { a[k] = .string(v) }
            }
            s["resourceAttributes"] = a
        }
        if let na = spec[2]?.first.map(fields) {
            var a: JSON = [:]
            if let p = string(na, 1) { a["path"] = .string(p) }
            if let v = string(na, 2) { a["verb"] = .string(v) }
            s["nonResourceAttributes"] = a
        }
        return ["apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": [:], "spec": s]
    }
}
