@testable import BerthAPI
import Foundation
import Testing

/// A small, seeded pseudo-random source (SplitMix64), so a failing mutation can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations a hostile or broken client could send: flipped bits, bytes dropped, inserted or
/// duplicated, truncation, and a run of bytes repeated (deep nesting, long varints).
enum BodyMutator {
    static let interesting: [UInt8] = Array("{}[]\":,\\-0e.&*!|>#\n\t ".utf8) + [0x00, 0x7F, 0x80, 0xFF, 0xC3, 0xED]

    static func mutate(_ input: [UInt8], using rng: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !bytes.isEmpty else { bytes = [interesting.randomElement(using: &rng)!]; continue }
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1: bytes.remove(at: at)
            case 2: bytes.insert(interesting.randomElement(using: &rng)!, at: at)
            case 3: bytes.removeSubrange(at...)
            case 4: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            default:
                let end = min(bytes.count, at + Int.random(in: 1...8, using: &rng))
                let run = Array(bytes[at..<end])
                bytes.insert(
                    contentsOf: Array(repeating: run, count: Int.random(in: 2...300, using: &rng)).joined(), at: at)
            }
        }
        return bytes
    }
}

extension APITests {
    /// The request-body decoders (JSON, YAML, Kubernetes protobuf) given malformed input: each call
    /// returns a value or throws a decode error — no crash, no hang, no unbounded memory. Seeds are
    /// fixed, so a failure replays.
    @Suite("request decoders under fuzzing", .timeLimit(.minutes(2)))
    struct DecoderFuzzTests {
        static let podJSON = #"""
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"default","labels":{"app":"web"},
            "annotations":{"note":"caf\u00e9 \ud83d\ude00"}},"spec":{"containers":[{"name":"c","image":"nginx:1.27",
            "ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}},
            "env":[{"name":"A","value":"1e3"}]}],"nodeSelector":{"disk":"ssd"},"terminationGracePeriodSeconds":30}}
            """#
        static let podYAML = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: web-1
              labels: {app: web, tier: "front"}
              annotations:
                note: |
                  two
                  lines
            spec:
              defaults: &defaults {image: "nginx:1.27", imagePullPolicy: IfNotPresent}
              containers:
              - name: c
                <<: *defaults
                ports: [{containerPort: 80}]
                args: ["-g", 'daemon off;', ~, 1.5, 0x1F]
            """

        @Test func jsonParserSurvivesMutations() {
            var rng = SeededRandom(state: 15)
            let seed = Array(Self.podJSON.utf8)
            var parsed = 0
            for _ in 0..<4000 {
                let body = BodyMutator.mutate(seed, using: &rng)
                if (try? JSON.parse(body)) != nil { parsed += 1 }
            }
            // Some mutations (a changed letter inside a string) stay valid JSON; most must not.
            #expect(parsed > 0 && parsed < 4000)
            #expect(throws: (any Error).self) { try JSON.parse(Array(repeating: UInt8(ascii: "["), count: 100_000)) }
        }

        @Test func yamlParserSurvivesMutations() {
            var rng = SeededRandom(state: 16)
            let seed = Array(Self.podYAML.utf8)
            var parsed = 0
            for _ in 0..<1500 {
                let body = BodyMutator.mutate(seed, using: &rng)
                if (try? JSON.parseYAML(String(decoding: body, as: UTF8.self))) != nil { parsed += 1 }
            }
            #expect(parsed > 0 && parsed < 1500)
        }

        /// "Billion laughs": nine levels of ten aliases each would expand to 10⁹ strings. go-yaml refuses
        /// such documents for kube-apiserver; so must Berth, before the tree is built.
        @Test func yamlAliasBombIsRefused() throws {
            var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...8 {
                text +=
                    "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
                    + "]\n"
            }
            #expect {
                try JSON.parseYAML(text)
            } throws: { error in
                "\(error)".contains("excessive aliasing")
            }
            // Modest reuse of an anchor, as charts do with `<<: *defaults`, still decodes.
            let fine = try JSON.parseYAML(Self.podYAML)
            #expect(fine["spec"]["containers"][0]["image"].string == "nginx:1.27")
        }

        @Test func yamlDeepNestingIsRefused() {
            let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
            #expect(throws: (any Error).self) { try JSON.parseYAML(deep) }
        }

        /// A CustomResourceDefinition's schema and CEL rules come from whoever may create definitions, and
        /// every write of its custom resources runs them: mutated rules and schemas are refused or
        /// evaluated, never a crash; nesting deep enough to exhaust a stack is refused.
        @Test func customResourceSchemasAndRulesSurviveMutations() throws {
            var rng = SeededRandom(state: 18)
            let rule = Array(
                "self.all(t, t.size() <= 4 && t.matches('^[a-z]+$')) || (has(self.x) ? self.x[0] > 1 : -2 < 3)".utf8)
            let object = try JSON.parse(Array(#"{"x":[1,2.5,"a"],"y":{"z":null}}"#.utf8))
            var compiled = 0
            for _ in 0..<3000 {
                let text = String(decoding: BodyMutator.mutate(rule, using: &rng), as: UTF8.self)
                guard let expression = try? CELParser.parse(text) else { continue }
                compiled += 1
                _ = try? CELEvaluator(variables: ["self": object, "oldSelf": object]).eval(expression)
            }
            #expect(compiled > 0 && compiled < 3000)
            #expect(throws: CELError.self) { try CELParser.parse(String(repeating: "(", count: 5000) + "1") }
            #expect(throws: CELError.self) { try CELParser.parse(String(repeating: "!", count: 5000) + "true") }
            #expect(throws: CELError.self) { try CELParser.parse(String(repeating: "[", count: 5000)) }

            let schema = Array(
                #"{"type":"object","properties":{"spec":{"type":"object","required":["a"],"properties":{"a":{"type":"string","pattern":"^a+$","maxLength":3},"l":{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["k"],"items":{"type":"object","properties":{"k":{"type":"integer","default":1}}}}},"x-kubernetes-validations":[{"rule":"size(self.a) > 0"}]}}}"#
                    .utf8)
            let value = try JSON.parse(Array(#"{"spec":{"a":"aa","l":[{"k":1},{}],"extra":true}}"#.utf8))
            for _ in 0..<2000 {
                guard let mutated = try? JSON.parse(BodyMutator.mutate(schema, using: &rng)) else { continue }
                var errors: [APIError.Cause] = []
                let s = StructuralSchema(mutated, path: "s", errors: &errors, root: true)
                var v = value
                var unknown: [String] = []
                s.prune(&v, path: "", unknown: &unknown, root: true)
                s.applyDefaults(&v)
                var errs: [APIError.Cause] = []
                s.validate(v, old: value, path: "", into: &errs, root: true)
                s.validate(v, old: value, path: "", into: &errs, root: true, transitionsOnly: true)
            }
        }

        @Test func protobufDecoderSurvivesMutations() {
            var rng = SeededRandom(state: 17)
            var container = ProtoWriter()
            container.string(1, "c")
            container.string(2, "nginx:1.27")
            container.message(6) {
                $0.int(3, 80); $0.string(4, "TCP")
            }
            let seed = ProtoWriter.envelope("v1", "Pod") { pod in
                pod.message(1) { meta in
                    meta.string(1, "web-1")
                    meta.string(3, "default")
                    meta.entry(11, "app", "web")
                }
                pod.message(2) { spec in
                    spec.bytes(2, container.bytes)
                    spec.int(4, 30)
                }
            }
            #expect((try? Protobuf.decodeObject(seed, kind: "Pod"))?["metadata"]["name"].string == "web-1")
            var decoded = 0
            for _ in 0..<4000 {
                let body = BodyMutator.mutate(seed, using: &rng)
                if (try? Protobuf.decodeObject(body, kind: "Pod")) != nil { decoded += 1 }
            }
            #expect(decoded > 0 && decoded < 4000)
            // A length prefix far beyond the body is an error, not an allocation.
            var huge = ProtoWriter()
            huge.tag(2, 2)
            huge.varint(1 << 40)
            #expect(throws: (any Error).self) { try Protobuf.decodeObject(Protobuf.magic + huge.bytes, kind: "Pod") }
        }
    }
}
