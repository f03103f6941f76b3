import BerthJSON
import BerthKube
import Testing

/// How the generated types hold their parts (what a server holding 300,000 pods pays per pod) and that
/// holding them out of line keeps value semantics.
@Suite("out-of-line storage and shared strings")
struct OutOfLineStorageTests {
    @Test func anObjectIsAFewWordsInline() {
        // metadata, spec and status out of line: a cache bucket, an event or a copy is a few words. Inline
        // a Pod was 832 bytes and a Node 576.
        #expect(MemoryLayout<CoreV1.Pod>.size <= 64)
        #expect(MemoryLayout<CoreV1.Node>.size <= 64)
        #expect(MemoryLayout<MetaV1.PartialObjectMetadata>.size <= 64)
    }

    @Test func copiesAreValuesAndAnAbsentPartEqualsItsZero() throws {
        var a = CoreV1.Pod()
        a.metadata.name = "p"
        a.spec.nodeName = "n1"
        var b = a
        b.spec.nodeName = "n2"
        b.metadata.labels["app"] = "web"
        #expect(a.spec.nodeName == "n1" && a.metadata.labels.isEmpty, "a change to a copy leaves the original")
        #expect(b.spec.nodeName == "n2" && b.metadata.name == "p")

        // Never set, set to its zero, or decoded from `{}`: the same value, hashed the same.
        var explicit = CoreV1.Pod()
        explicit.status = CoreV1.PodStatus()
        let decoded = try CoreV1.Pod(json: Array(#"{"status":{}}"#.utf8))
        #expect(CoreV1.Pod() == explicit && explicit == decoded)
        #expect(Set([CoreV1.Pod(), explicit, decoded]).count == 1)
        #expect(CoreV1.Pod() != a)

        // The JSON form is unchanged: Go always writes a struct, so an unset part is written as its zero.
        #expect(CoreV1.Pod().jsonBytes() == explicit.jsonBytes())
        let text = String(decoding: CoreV1.Pod().jsonBytes(), as: UTF8.self)
        #expect(text.contains(#""status":{}"#) && text.contains(#""metadata":{"creationTimestamp":null}"#), "\(text)")
    }

    @Test func aPoolSharesEqualLongStringsAndKeepsShortOnesAsTheyAre() throws {
        let pool = StringPool()
        let json = Array(
            #"{"metadata":{"name":"web-7d4b9c8f5-abcde","labels":{"pod-template-hash":"7d4b9c8f5"}},"spec":{"containers":[{"name":"c","image":"registry.local/pause:1"}],"schedulerName":"default-scheduler"}}"#
                .utf8)
        let a = try CoreV1.Pod(json: json, strings: pool)
        let b = try CoreV1.Pod(json: json, strings: pool)
        let c = try CoreV1.Pod(json: json)
        #expect(a == b && b == c, "pooling changes no value")
        func storage(_ s: String?) -> UnsafeRawPointer? {
            var s = s ?? ""
            return s.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        // Long strings (over 15 UTF-8 bytes live on the heap) decoded through the pool share storage,
        // values and map keys alike; without the pool each decode has its own.
        #expect(storage(a.metadata.name) == storage(b.metadata.name))
        #expect(storage(a.spec.containers[0].image) == storage(b.spec.containers[0].image))
        #expect(storage(a.spec.schedulerName) == storage(b.spec.schedulerName))
        #expect(storage(a.metadata.labels.keys.first) == storage(b.metadata.labels.keys.first))
        #expect(storage(a.metadata.name) != storage(c.metadata.name))
        #expect(pool.intern("short") == "short")
    }
}
