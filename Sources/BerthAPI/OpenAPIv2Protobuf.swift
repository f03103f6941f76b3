/// /openapi/v2 in gnostic's protobuf (`openapi_v2.Document`), the only form client-go's discovery reads
/// it in (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`). kubectl falls back to it
/// whenever OpenAPI v3 cannot answer a question — a kind with no PATCH operation (the review kinds,
/// TokenRequest) when it checks for server-side field validation — and then validates the manifest
/// against it; a JSON answer there failed `kubectl create -f` with "proto: cannot parse invalid
/// wire-format data".
///
/// The swagger JSON is walked with gnostic's field numbers (openapiv2/OpenAPIv2.proto, proto3: zero
/// scalars are left out). Values gnostic keeps as `Any` (defaults, enums, examples, vendor extensions)
/// go in its `yaml` field as JSON text, which is YAML and what kube-openapi's reader unmarshals.
enum OpenAPIv2Protobuf {
    /// The media type client-go asks for, and the one upstream answers with.
    static let acceptedMediaTypes = [
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    ]
    static let mediaType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

    /// Whether `accept` asks for the protobuf document (client-go lists nothing else).
    static func wanted(_ accept: String) -> Bool {
        let ranges = MediaRange.parse(accept)
        return ranges.first.map { acceptedMediaTypes.contains("\($0.type)/\($0.subtype)") } ?? false
    }

    typealias Writer = Protobuf.Writer

    static func document(_ doc: JSON) -> [UInt8] {
        var w = Writer()
        string(&w, 1, doc["swagger"])
        if doc["info"].object != nil {
            w.message(2) { i in
                string(&i, 1, doc["info"]["title"])
                string(&i, 2, doc["info"]["version"])
                string(&i, 3, doc["info"]["description"])
                extensions(&i, 7, doc["info"])
            }
        }
        string(&w, 3, doc["host"])
        string(&w, 4, doc["basePath"])
        strings(&w, 5, doc["schemes"])
        strings(&w, 6, doc["consumes"])
        strings(&w, 7, doc["produces"])
        if doc["paths"].object != nil {
            w.message(8) { p in
                extensions(&p, 1, doc["paths"])
                named(&p, 2, doc["paths"], extensionsApart: true, pathItem)
            }
        }
        if doc["definitions"].object != nil { w.message(9) { named(&$0, 1, doc["definitions"], schema) } }
        if doc["parameters"].object != nil { w.message(10) { named(&$0, 1, doc["parameters"], parameter) } }
        if doc["responses"].object != nil { w.message(11) { named(&$0, 1, doc["responses"], response) } }
        for requirement in doc["security"].array ?? [] { w.message(12) { securityRequirement(&$0, requirement) } }
        if doc["securityDefinitions"].object != nil {
            w.message(13) { named(&$0, 1, doc["securityDefinitions"], securityScheme) }
        }
        extensions(&w, 16, doc)
        return w.out
    }

    static func pathItem(_ w: inout Writer, _ item: JSON) {
        string(&w, 1, item["$ref"])
        for (n, method) in [
            (2, "get"), (3, "put"), (4, "post"), (5, "delete"), (6, "options"), (7, "head"), (8, "patch"),
        ]
        where item[method].object != nil {
            w.message(n) { operation(&$0, item[method]) }
        }
        for p in item["parameters"].array ?? [] { w.message(9) { parametersItem(&$0, p) } }
        extensions(&w, 10, item)
    }

    static func operation(_ w: inout Writer, _ op: JSON) {
        strings(&w, 1, op["tags"])
        string(&w, 2, op["summary"])
        string(&w, 3, op["description"])
        string(&w, 5, op["operationId"])
        strings(&w, 6, op["produces"])
        strings(&w, 7, op["consumes"])
        for p in op["parameters"].array ?? [] { w.message(8) { parametersItem(&$0, p) } }
        if op["responses"].object != nil {
            w.message(9) { r in
                named(&r, 1, op["responses"], extensionsApart: true) { value, v in
                    if v["$ref"].string != nil {
                        value.message(2) { reference(&$0, v) }
                    } else {
                        value.message(1) { response(&$0, v) }
                    }
                }
                extensions(&r, 2, op["responses"])
            }
        }
        strings(&w, 10, op["schemes"])
        bool(&w, 11, op["deprecated"])
        for requirement in op["security"].array ?? [] { w.message(12) { securityRequirement(&$0, requirement) } }
        extensions(&w, 13, op)
    }

    static func reference(_ w: inout Writer, _ ref: JSON) {
        string(&w, 1, ref["$ref"])
        string(&w, 2, ref["description"])
    }

    static func parametersItem(_ w: inout Writer, _ p: JSON) {
        if p["$ref"].string != nil {
            w.message(2) { reference(&$0, p) }
        } else {
            w.message(1) { parameter(&$0, p) }
        }
    }

    /// A Parameter: body, or one of the non-body kinds, whose field numbers differ by kind.
    static func parameter(_ w: inout Writer, _ p: JSON) {
        let location = p["in"].string ?? ""
        if location == "body" {
            w.message(1) { b in
                string(&b, 1, p["description"])
                string(&b, 2, p["name"])
                string(&b, 3, p["in"])
                bool(&b, 4, p["required"])
                if p["schema"].object != nil { b.message(5) { schema(&$0, p["schema"]) } }
                extensions(&b, 6, p)
            }
            return
        }
        // header 1, formData 2, query 3, path 4; query and formData have allowEmptyValue (5) and so
        // number the rest one higher.
        let which = ["header": 1, "formData": 2, "query": 3, "path": 4][location] ?? 3
        let shift = which == 2 || which == 3 ? 1 : 0
        w.message(2) { nonBody in
            nonBody.message(which) { s in
                bool(&s, 1, p["required"])
                string(&s, 2, p["in"])
                string(&s, 3, p["description"])
                string(&s, 4, p["name"])
                if shift == 1 { bool(&s, 5, p["allowEmptyValue"]) }
                primitive(&s, p, from: 5 + shift)
            }
        }
    }

    /// The fields a non-body parameter, a header and PrimitivesItems share, numbered from `from`:
    /// type, format, items, collectionFormat, default, maximum … enum, multipleOf; extensions after.
    static func primitive(_ w: inout Writer, _ p: JSON, from n: Int, extensions withExtensions: Bool = true) {
        string(&w, n, p["type"])
        string(&w, n + 1, p["format"])
        if p["items"].object != nil { w.message(n + 2) { primitive(&$0, p["items"], from: 1) } }
        string(&w, n + 3, p["collectionFormat"])
        any(&w, n + 4, p["default"])
        double(&w, n + 5, p["maximum"])
        bool(&w, n + 6, p["exclusiveMaximum"])
        double(&w, n + 7, p["minimum"])
        bool(&w, n + 8, p["exclusiveMinimum"])
        int(&w, n + 9, p["maxLength"])
        int(&w, n + 10, p["minLength"])
        string(&w, n + 11, p["pattern"])
        int(&w, n + 12, p["maxItems"])
        int(&w, n + 13, p["minItems"])
        bool(&w, n + 14, p["uniqueItems"])
        for e in p["enum"].array ?? [] { w.message(n + 15) { anyValue(&$0, e) } }
        double(&w, n + 16, p["multipleOf"])
        if withExtensions { extensions(&w, n + 17, p) }
    }

    static func response(_ w: inout Writer, _ r: JSON) {
        string(&w, 1, r["description"])
        if r["schema"].object != nil {
            w.message(2) { item in item.message(1) { schema(&$0, r["schema"]) } }
        }
        if r["headers"].object != nil {
            w.message(3) { h in
                named(&h, 1, r["headers"]) { header, value in
                    // Header numbers its description 18, between the shared fields and extensions.
                    primitive(&header, value, from: 1, extensions: false)
                    string(&header, 18, value["description"])
                    extensions(&header, 19, value)
                }
            }
        }
        extensions(&w, 5, r)
    }

    static func schema(_ w: inout Writer, _ s: JSON) {
        string(&w, 1, s["$ref"])
        string(&w, 2, s["format"])
        string(&w, 3, s["title"])
        string(&w, 4, s["description"])
        any(&w, 5, s["default"])
        double(&w, 6, s["multipleOf"])
        double(&w, 7, s["maximum"])
        bool(&w, 8, s["exclusiveMaximum"])
        double(&w, 9, s["minimum"])
        bool(&w, 10, s["exclusiveMinimum"])
        int(&w, 11, s["maxLength"])
        int(&w, 12, s["minLength"])
        string(&w, 13, s["pattern"])
        int(&w, 14, s["maxItems"])
        int(&w, 15, s["minItems"])
        bool(&w, 16, s["uniqueItems"])
        int(&w, 17, s["maxProperties"])
        int(&w, 18, s["minProperties"])
        strings(&w, 19, s["required"])
        for e in s["enum"].array ?? [] { w.message(20) { anyValue(&$0, e) } }
        switch s["additionalProperties"] {
        case .object: w.message(21) { a in a.message(1) { schema(&$0, s["additionalProperties"]) } }
        case .bool(let b): w.message(21) { $0.varint(2, b ? 1 : 0) }
        default: break
        }
        switch s["type"] {
        case .string(let t): w.message(22) { $0.string(1, t) }
        case .array(let ts): w.message(22) { t in for case .string(let v) in ts { t.string(1, v) } }
        default: break
        }
        switch s["items"] {
        case .object: w.message(23) { i in i.message(1) { schema(&$0, s["items"]) } }
        case .array(let list): w.message(23) { i in for item in list { i.message(1) { schema(&$0, item) } } }
        default: break
        }
        for part in s["allOf"].array ?? [] { w.message(24) { schema(&$0, part) } }
        if s["properties"].object != nil { w.message(25) { named(&$0, 1, s["properties"], schema) } }
        string(&w, 26, s["discriminator"])
        bool(&w, 27, s["readOnly"])
        any(&w, 30, s["example"])
        extensions(&w, 31, s)
    }

    static func securityRequirement(_ w: inout Writer, _ r: JSON) {
        for name in (r.object ?? [:]).keys.sorted() {
            w.message(1) { named in
                named.string(1, name)
                named.message(2) { strings(&$0, 1, r[name]) }
            }
        }
    }

    /// A security scheme; Berth's document names only API keys (bearer tokens) and basic auth.
    static func securityScheme(_ w: inout Writer, _ s: JSON) {
        switch s["type"].string {
        case "basic":
            w.message(1) { b in
                string(&b, 1, s["type"])
                string(&b, 2, s["description"])
                extensions(&b, 3, s)
            }
        case "apiKey":
            w.message(2) { k in
                string(&k, 1, s["type"])
                string(&k, 2, s["name"])
                string(&k, 3, s["in"])
                string(&k, 4, s["description"])
                extensions(&k, 5, s)
            }
        default: break
        }
    }

    /// gnostic's Named* lists: an object's members as {1 name, 2 value} entries, by name. Where the
    /// object may hold extensions (Paths, Responses) its `x-` members are written apart.
    static func named(
        _ w: inout Writer, _ n: Int, _ object: JSON, extensionsApart: Bool = false,
        _ value: (inout Writer, JSON) -> Void
    ) {
        let members = object.object ?? [:]
        for name in members.keys.sorted() where !(extensionsApart && name.hasPrefix("x-")) {
            w.message(n) { entry in
                entry.string(1, name)
                entry.message(2) { value(&$0, members[name] ?? .null) }
            }
        }
    }

    // MARK: scalars, proto3 style (zero values are not written)

    static func string(_ w: inout Writer, _ n: Int, _ v: JSON) {
        if case .string(let s) = v, !s.isEmpty { w.string(n, s) }
    }
    static func strings(_ w: inout Writer, _ n: Int, _ v: JSON) {
        for case .string(let s) in v.array ?? [] { w.string(n, s) }
    }
    static func bool(_ w: inout Writer, _ n: Int, _ v: JSON) {
        if case .bool(true) = v { w.varint(n, 1) }
    }
    static func int(_ w: inout Writer, _ n: Int, _ v: JSON) {
        if case .number(let text) = v, let i = Int64(text), i != 0 { w.varint(n, UInt64(bitPattern: i)) }
    }
    static func double(_ w: inout Writer, _ n: Int, _ v: JSON) {
        guard case .number(let text) = v, let d = Double(text), d != 0 else { return }
        w.tag(n, 1)
        for k in 0..<8 { w.out.append(UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64(k)))) }
    }
    /// An `Any` field holding `v` (absent when the JSON has none).
    static func any(_ w: inout Writer, _ n: Int, _ v: JSON) {
        if v != .null { w.message(n) { anyValue(&$0, v) } }
    }
    static func anyValue(_ w: inout Writer, _ v: JSON) { w.string(2, v.text) }
    /// The `x-` keys of an object as NamedAny entries.
    static func extensions(_ w: inout Writer, _ n: Int, _ o: JSON) {
        for key in (o.object ?? [:]).keys.sorted() where key.hasPrefix("x-") {
            w.message(n) { named in
                named.string(1, key)
                named.message(2) { anyValue(&$0, o[key]) }
            }
        }
    }
}
