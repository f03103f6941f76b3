import BerthJSON
import BerthKube
import Testing

/// Mutated and truncated objects: every outcome is a value or a thrown error, never a crash or a hang.
@Suite struct FuzzTests {
    /// A small deterministic generator (SplitMix64), so a failure reproduces.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let replacements: [[UInt8]] = [
        "\"", "{", "}", "[", "]", ",", ":", "0", "-1", "1e99", "null", "true", "\"x\"", "\\u00", "9999999999999999999",
        "[]", "{}",
    ].map { Array($0.utf8) }

    @Test func mutatedObjectsNeverCrash() {
        var rng = SplitMix(state: 15)
        var decoded = 0, failed = 0
        for sample in [
            Samples.pod, Samples.deployment, Samples.service, Samples.node, Samples.endpointSlice, Samples.lease,
        ] {
            let original = Array(sample.utf8)
            for _ in 0..<400 {
                var bytes = original
                for _ in 0..<(1 + rng.below(4)) {
                    let at = rng.below(bytes.count)
                    switch rng.below(4) {
                    case 0: bytes.removeSubrange(at..<min(bytes.count, at + 1 + rng.below(8)))
                    case 1: bytes.insert(contentsOf: Self.replacements[rng.below(Self.replacements.count)], at: at)
                    case 2: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                    default: bytes = Array(bytes.prefix(at))
                    }
                    if bytes.isEmpty { break }
                }
                for type in [CoreV1.Pod.self, AppsV1.Deployment.self, CoreV1.Node.self] as [any KubeJSONCodable.Type] {
                    if Self.attempt(type, bytes) { decoded += 1 } else { failed += 1 }
                }
            }
        }
        #expect(decoded + failed == 6 * 400 * 3)
    }

    @Test func typeConfusedTreesNeverCrash() {
        // Every member of a real pod replaced in turn by values of every other JSON type.
        let values: [JSON] = [
            .null, .bool(true), .number("-0"), .number("1e400"), .string(""), .array([.null]), .object(["x": .null]),
        ]
        guard case .object(let pod)? = try? JSONParser.parse(Array(Samples.pod.utf8)) else {
            Issue.record("sample"); return
        }
        var outcomes = 0
        func visit(_ tree: JSON, replace: (JSON) -> JSON) {
            for v in values {
                _ = try? CoreV1.Pod(kubeJSON: replace(v))
                outcomes += 1
            }
            switch tree {
            case .object(let o):
                for (k, child) in o {
                    visit(child) { v in
                        var c = o; c[k] = v; return replace(.object(c))
                    }
                }
            case .array(let a):
                for (i, child) in a.enumerated() {
                    visit(child) { v in
                        var c = a; c[i] = v; return replace(.array(c))
                    }
                }
            default: break
            }
        }
        visit(.object(pod)) { $0 }
        #expect(outcomes > 1000)
    }

    static func attempt<T: KubeJSONCodable>(_ type: T.Type, _ bytes: [UInt8]) -> Bool {
        var unknown: [String] = []
        guard let v = try? T(json: bytes, unknownFields: &unknown) else { return false }
        _ = v.jsonBytes()
        return true
    }
}
