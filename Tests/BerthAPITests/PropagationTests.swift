import BerthAPI
import Foundation
import Testing

/// Cascading deletion as kubectl and raw clients see it: the API server only marks or removes the owner
/// and the garbage collector (running beside it, as in `berth server`) finishes the cascade.
@Suite("deletion propagation", .serialized)
struct PropagationTests {
    static let cms = "/api/v1/namespaces/default/configmaps"

    /// An owner ConfigMap with a dependent that blocks its deletion and one that does not.
    static func family(_ s: TestServer, _ owner: String, finalizers: [String] = []) throws -> String {
        let fin =
            finalizers.isEmpty
            ? ""
            : #","finalizers":\#(String(decoding: JSON.array(finalizers.map { .string($0) }).serialized(), as: UTF8.self))"#
        let (code, o) = try s.curl("POST", cms, body: #"{"metadata":{"name":"\#(owner)"\#(fin)}}"#)
        #expect(code == 201)
        let uid = o["metadata"]["uid"].string ?? ""
        for (child, block) in [("\(owner)-blocking", true), ("\(owner)-free", false)] {
            let ref =
                #"{"apiVersion":"v1","kind":"ConfigMap","name":"\#(owner)","uid":"\#(uid)","blockOwnerDeletion":\#(block)}"#
            #expect(
                try s.curl("POST", cms, body: #"{"metadata":{"name":"\#(child)","ownerReferences":[\#(ref)]}}"#).0
                    == 201)
        }
        return uid
    }
    static func gone(_ s: TestServer, _ name: String) throws -> Bool { try s.curl("GET", cms + "/" + name).0 == 404 }

    @Test func backgroundRemovesTheOwnerAtOnceAndTheCollectorTheDependents() async throws {
        let s = try await TestServer()
        _ = try Self.family(s, "bg")
        let (code, body) = try s.curl("DELETE", Self.cms + "/bg?propagationPolicy=Background")
        #expect(code == 200 && body["metadata"]["name"] == "bg")
        #expect(try Self.gone(s, "bg"), "the owner is gone when the request returns")
        try await s.eventually("dependents collected") { try Self.gone(s, "bg-blocking") && Self.gone(s, "bg-free") }
        await s.stop()
    }

    @Test func foregroundKeepsTheOwnerUntilItsDependentsAreGone() async throws {
        let s = try await TestServer()
        _ = try Self.family(s, "fg")
        let (code, owner) = try s.curl(
            "DELETE", Self.cms + "/fg",
            body: #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#)
        #expect(code == 202)
        #expect(
            !owner["metadata"]["deletionTimestamp"].isNull && owner["metadata"]["finalizers"] == ["foregroundDeletion"])
        try await s.eventually("owner and dependents gone") {
            try Self.gone(s, "fg") && Self.gone(s, "fg-blocking") && Self.gone(s, "fg-free")
        }
        // kubectl's --cascade=foreground waits for the owner to go.
        _ = try Self.family(s, "kfg")
        let r = try s.kubectl("delete", "configmap", "kfg", "--cascade=foreground")
        #expect(r.ok, "\(r.stderr)")
        #expect(try Self.gone(s, "kfg"))
        try await s.eventually("kubectl's dependents gone") {
            try Self.gone(s, "kfg-blocking") && Self.gone(s, "kfg-free")
        }
        await s.stop()
    }

    @Test func orphanKeepsTheDependentsWithoutTheirReference() async throws {
        let s = try await TestServer()
        _ = try Self.family(s, "or")
        let r = try s.kubectl("delete", "configmap", "or", "--cascade=orphan")
        #expect(r.ok, "\(r.stderr)")
        try await s.eventually("the owner goes once its dependents are orphaned") { try Self.gone(s, "or") }
        for child in ["or-blocking", "or-free"] {
            let (code, dep) = try s.curl("GET", Self.cms + "/" + child)
            #expect(code == 200 && dep["metadata"]["ownerReferences"].isNull, "\(child): \(dep["metadata"])")
        }
        // The deprecated orphanDependents means the same.
        _ = try Self.family(s, "od")
        #expect(try s.curl("DELETE", Self.cms + "/od", body: #"{"orphanDependents":true}"#).0 == 202)
        try await s.eventually("orphanDependents orphans") { try Self.gone(s, "od") }
        #expect(try s.curl("GET", Self.cms + "/od-free").1["metadata"]["ownerReferences"].isNull)
        #expect(try s.curl("DELETE", Self.cms + "/od-free?propagationPolicy=Sideways").0 == 422)
        await s.stop()
    }

    @Test func anotherFinalizerHoldsTheObjectAfterTheCollectorIsDone() async throws {
        let s = try await TestServer()
        _ = try Self.family(s, "held", finalizers: ["example.com/hold"])
        #expect(try s.curl("DELETE", Self.cms + "/held?propagationPolicy=Foreground").0 == 202)
        try await s.eventually("dependents gone and foregroundDeletion removed") {
            let held = try s.curl("GET", Self.cms + "/held").1
            return try Self.gone(s, "held-blocking") && Self.gone(s, "held-free")
                && held["metadata"]["finalizers"] == ["example.com/hold"]
        }
        var (code, held) = try s.curl("GET", Self.cms + "/held")
        #expect(code == 200 && !held["metadata"]["deletionTimestamp"].isNull, "held by its own finalizer")
        // Being deleted: finalizers may go, none may be added; other metadata may still change.
        (code, _) = try s.curl(
            "PATCH", Self.cms + "/held", body: #"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
            contentType: "application/merge-patch+json")
        #expect(code == 422)
        (code, held) = try s.curl(
            "PATCH", Self.cms + "/held", body: #"{"metadata":{"labels":{"a":"b"}}}"#,
            contentType: "application/merge-patch+json")
        #expect(code == 200 && held["metadata"]["labels"]["a"] == "b")
        (code, _) = try s.curl(
            "PATCH", Self.cms + "/held", body: #"{"metadata":{"finalizers":null}}"#,
            contentType: "application/merge-patch+json")
        #expect(code == 200)
        #expect(try Self.gone(s, "held"))
        await s.stop()
    }
}
