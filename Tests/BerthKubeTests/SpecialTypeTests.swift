import BerthJSON
import BerthKube
import Testing

@Suite struct SpecialTypeTests {
    @Test func quantitiesReadExactlyAndRoundUp() {
        #expect(Quantity.milli("100m") == 100)
        #expect(Quantity.milli("1.5") == 1500)
        #expect(Quantity.milli("0.1") == 100)
        #expect(Quantity.milli("1") == 1000)
        #expect(Quantity.milli("2e3") == 2_000_000)
        #expect(Quantity.milli("1E-3") == 1)
        #expect(Quantity.milli("1u") == 1)  // 0.001 milli, rounded up
        #expect(Quantity.milli("-100m") == -100)
        #expect(Quantity.units("1Ki") == 1024)
        #expect(Quantity.units("1.5Gi") == 1_610_612_736)
        #expect(Quantity.units("0.5Ki") == 512)
        #expect(Quantity.units("1M") == 1_000_000)
        #expect(Quantity.units("1.5") == 2)
        #expect(Quantity.units("100m") == 1)
        #expect(Quantity.units("0") == 0)
        #expect(Quantity.units("+7") == 7)
        #expect(Quantity.units("8Ei") == nil)  // past Int64
        #expect(Quantity.units("") == nil)
        #expect(Quantity.units("12Q") == nil)
        #expect(Quantity.units("1.2.3") == nil)
        #expect(Quantity.units("Mi") == nil)
        #expect(Quantity.milli("0.0001") == 1)
    }

    @Test func quantitiesKeepTheirTextAndAcceptBareNumbers() throws {
        let r = try CoreV1.ResourceRequirements(json: Array(#"{"limits":{"cpu":2,"memory":"1.5Gi"}}"#.utf8))
        #expect(r.limits["cpu"] == "2")
        #expect(r.limits["memory"]?.value == 1_610_612_736)
        #expect(String(decoding: r.jsonBytes(), as: UTF8.self) == #"{"limits":{"cpu":"2","memory":"1.5Gi"}}"#)
        #expect(throws: KubeJSONError.self) {
            try CoreV1.ResourceRequirements(json: Array(#"{"limits":{"cpu":"lots"}}"#.utf8))
        }
    }

    /// Go's CanonicalizeBytes, case by case (the forms `kubectl get -o yaml` shows from kube-apiserver).
    @Test func quantitiesHaveGosCanonicalForm() {
        let cases: [(String, String)] = [
            ("0", "0"), ("0.0", "0"), ("0Mi", "0"), ("1", "1"), ("1.0", "1"), ("0.5", "500m"), ("0.1", "100m"),
            ("1.5", "1500m"), ("100m", "100m"), ("1000m", "1"), ("1500m", "1500m"), ("1000", "1k"),
            ("1500", "1500"), ("2.5k", "2500"), ("1000k", "1M"), ("10G", "10G"), ("0.0015", "1500u"),
            ("1Ki", "1Ki"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"), ("0.5Gi", "512Mi"),
            ("1025Ki", "1025Ki"), ("0.5Ki", "512"), ("0.3Ki", "307200m"), ("16Mi", "16Mi"),
            ("1e3", "1e3"), ("12e6", "12e6"), ("1.5e3", "1500"), ("1E3", "1e3"), ("-1", "-1"), ("-0.5", "-500m"),
            ("-1024Mi", "-1Gi"), ("+1", "1"), ("0.0000000001", "1n"), ("1.0000000001", "1000000001n"),
            ("1000E", "1000E"), ("1000000000000000000000", "1000E"),
        ]
        for (text, canonical) in cases {
            #expect(Quantity.canonical(text) == canonical, "\(text)")
        }
        #expect(Quantity.canonical("1.5x") == nil && Quantity.canonical("") == nil)
        // Past 64-bit arithmetic the text is kept as written (nil: no canonical form computed).
        #expect(Quantity.canonical("123456789012345678901234567890") == nil)
    }

    @Test func intOrStringKeepsItsForm() throws {
        for text in [#"{"port":8080}"#, #"{"port":"http"}"#, #"{"port":"25%"}"#, #"{"port":0}"#] {
            let a = try CoreV1.TCPSocketAction(json: Array(text.utf8))
            #expect(String(decoding: a.jsonBytes(), as: UTF8.self) == text)
        }
        #expect(IntOrString.string("25%").scaled(total: 10, roundUp: true) == 3)
        #expect(IntOrString.string("25%").scaled(total: 10, roundUp: false) == 2)
        #expect(IntOrString.int(4).scaled(total: 10, roundUp: true) == 4)
        #expect(IntOrString.string("http").scaled(total: 10, roundUp: true) == nil)
        #expect(throws: KubeJSONError.self) { try CoreV1.TCPSocketAction(json: Array(#"{"port":1.5}"#.utf8)) }
        #expect(throws: KubeJSONError.self) { try CoreV1.TCPSocketAction(json: Array(#"{"port":true}"#.utf8)) }
        // Go's zero IntOrString is the integer 0, always written.
        #expect(String(decoding: CoreV1.TCPSocketAction().jsonBytes(), as: UTF8.self) == #"{"port":0}"#)
    }

    @Test func timesAreRFC3339InUTC() throws {
        let t = try #require(MetaV1.Time(rfc3339: "2026-12-04T03:56:08+02:00"))
        #expect(t.rfc3339 == "2026-12-04T01:56:08Z")
        #expect(MetaV1.Time(rfc3339: "1970-01-01T00:00:00Z")?.secondsSince1970 == 0)
        #expect(MetaV1.Time(rfc3339: "2000-02-29T12:00:00.999Z")?.rfc3339 == "2000-02-29T12:00:00Z")
        #expect(MetaV1.Time(rfc3339: "1969-12-31T23:59:59Z")?.secondsSince1970 == -1)
        #expect(MetaV1.Time(secondsSince1970: -1).rfc3339 == "1969-12-31T23:59:59Z")
        #expect(MetaV1.Time.zero.rfc3339 == "0001-01-01T00:00:00Z")
        #expect(MetaV1.Time(rfc3339: "2026-12-04 01:56:08Z") == nil)
        #expect(MetaV1.Time(rfc3339: "2026-13-04T01:56:08Z") == nil)
        #expect(MetaV1.Time(rfc3339: "2026-12-04T01:56:08") == nil)
        let m = try #require(MetaV1.MicroTime(rfc3339: "2026-12-04T01:56:08.5Z"))
        #expect(m.rfc3339 == "2026-12-04T01:56:08.500000Z")
        #expect(MetaV1.MicroTime(rfc3339: "1969-12-31T23:59:59.999999Z")?.rfc3339 == "1969-12-31T23:59:59.999999Z")
        // A zero Time is null, as Go writes it.
        let c = MetaV1.Condition(type: "Ready", status: .true, lastTransitionTime: nil)
        #expect(c.kubeJSON().objectMember("lastTransitionTime") == .null)
        #expect(throws: KubeJSONError.self) {
            try MetaV1.Condition(json: Array(#"{"lastTransitionTime":"yesterday"}"#.utf8))
        }
    }

    @Test func durationsReadAndWriteAsGoDoes() {
        for (text, ns) in [
            ("0s", Int64(0)), ("1h2m3s", 3_723_000_000_000), ("1.5s", 1_500_000_000), ("300ms", 300_000_000),
            ("2µs", 2_000), ("7ns", 7), ("-1m30s", -90_000_000_000), ("72h0m0.5s", 259_200_500_000_000),
        ] {
            #expect(MetaV1.Duration(text)?.nanoseconds == ns, "\(text)")
            #expect(MetaV1.Duration(nanoseconds: ns).description == text, "\(text)")
        }
        #expect(MetaV1.Duration("1us")?.description == "1µs")
        #expect(MetaV1.Duration("5") == nil)
        #expect(MetaV1.Duration("1d") == nil)
    }

    @Test func bytesAreBase64() throws {
        let s = try CoreV1.Secret(json: Array(#"{"data":{"a":"aGVsbG8=","b":"","c":"AAEC/w=="},"type":"Opaque"}"#.utf8))
        #expect(s.data["a"] == Array("hello".utf8))
        #expect(s.data["b"] == [])
        #expect(s.data["c"] == [0, 1, 2, 255])
        #expect(s.type == "Opaque")
        #expect(
            s.kubeJSON()
                == (try JSONParser.parse(
                    Array(
                        #"{"metadata":{"creationTimestamp":null},"data":{"a":"aGVsbG8=","b":"","c":"AAEC/w=="},"type":"Opaque"}"#
                            .utf8))))
        for n in 0..<8 {
            let bytes = (0..<n).map { UInt8($0 * 37 & 0xFF) }
            #expect(Base64Bytes.decode(Base64Bytes.encode(bytes)) == bytes)
        }
        #expect(Base64Bytes.decode("aGVsbG8") == nil)
        #expect(Base64Bytes.decode("aGV=bG8=") == nil)
        #expect(throws: KubeJSONError.self) { try CoreV1.Secret(json: Array(#"{"data":{"a":"not base64!"}}"#.utf8)) }
    }

    @Test func rawExtensionsKeepTheirTree() throws {
        let text =
            #"{"object":{"apiVersion":"v1","extra":[1,2.5,"y",null],"kind":"Pod","metadata":{"name":"x"}},"type":"ADDED"}"#
        let e = try MetaV1.WatchEvent(json: Array(text.utf8))
        #expect(e.type == "ADDED")
        #expect(try e.object.decode(as: CoreV1.Pod.self).metadata.name == "x")
        #expect(String(decoding: e.jsonBytes(), as: UTF8.self) == text)
        var other = e
        other.object = RawExtension(
            .object([
                "extra": .array([.number("1"), .number("2.5"), .string("y"), .null]),
                "metadata": .object(["name": .string("x")]), "kind": .string("Pod"), "apiVersion": .string("v1"),
            ]))
        #expect(other == e)
        #expect(other.hashValue == e.hashValue)
    }

    @Test func enumsKeepUnknownValues() throws {
        let text = #"{"phase":"Hibernating","qosClass":"Guaranteed"}"#
        let s = try CoreV1.PodStatus(json: Array(text.utf8))
        #expect(s.phase == CoreV1.PodPhase(rawValue: "Hibernating"))
        #expect(s.phase?.isKnown == false)
        #expect(s.qosClass == .guaranteed)
        #expect(s.qosClass?.isKnown == true)
        #expect(String(decoding: s.jsonBytes(), as: UTF8.self) == text)
        #expect(
            CoreV1.PodPhase.knownValues.map(\.rawValue) == ["Pending", "Running", "Succeeded", "Failed", "Unknown"])
    }
}

extension JSON {
    func objectMember(_ key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}
