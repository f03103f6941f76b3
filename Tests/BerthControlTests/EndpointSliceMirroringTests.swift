import BerthAPI
@testable import BerthControl
import BerthKube
import Foundation
import Testing

extension ControlTests {
    /// Hand-written Endpoints of selector-less Services mirrored into EndpointSlices, with kubectl
    /// (kube-controller-manager's endpointslicemirroring; issue 16).
    @Suite(
        "endpoint slice mirroring with kubectl",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    struct EndpointSliceMirroringTests {
        static let mirror = "endpointslicemirroring-controller.k8s.io"

        static func mirrored(_ items: [JSON], of name: String) -> [JSON] {
            items.filter {
                $0["metadata"]["labels"]["kubernetes.io/service-name"].string == name
                    && $0["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"].string == mirror
            }
        }

        /// address → ready, of every endpoint in `slices`.
        static func readiness(_ slices: [JSON]) -> [String: Bool] {
            var out: [String: Bool] = [:]
            for s in slices {
                for e in s["endpoints"].array ?? [] {
                    out[e["addresses"][0].string ?? ""] = e["conditions"]["ready"].bool
                }
            }
            return out
        }

        @Test func handWrittenEndpointsAreMirroredUpdatedAndDeleted() async throws {
            try await withFixtureCluster { c in
                let yaml = """
                    apiVersion: v1
                    kind: Service
                    metadata: {name: db, namespace: default}
                    spec:
                      ports: [{name: pg, port: 5432}]
                    ---
                    apiVersion: v1
                    kind: Endpoints
                    metadata: {name: db, namespace: default, labels: {team: data}}
                    subsets:
                    - addresses: [{ip: 192.0.2.10, nodeName: n1}, {ip: 192.0.2.11}]
                      notReadyAddresses: [{ip: 192.0.2.12}]
                      ports: [{name: pg, port: 5432, protocol: TCP}]
                    """
                let applied = try c.kubectl("apply", "-f", "-", stdin: yaml)
                #expect(applied.ok, "\(applied.stderr)")
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "the mirrored slice") { items in
                    let slices = Self.mirrored(items, of: "db")
                    return slices.count == 1
                        && Self.readiness(slices) == ["192.0.2.10": true, "192.0.2.11": true, "192.0.2.12": false]
                }
                let got = try c.kubectl(
                    "get", "endpointslices", "-l", "kubernetes.io/service-name=db", "-o", "json")
                let slice = try JSON.parse(got.stdout)["items"][0]
                #expect(slice["addressType"] == "IPv4")
                #expect(slice["ports"] == [["name": "pg", "port": 5432, "protocol": "TCP"]])
                #expect(slice["metadata"]["labels"]["team"] == "data")
                #expect(slice["metadata"]["name"].string?.hasPrefix("db-") == true)
                let endpoints = try #require(
                    try await c.client.get(Registry.endpoints, namespace: "default", name: "db"))
                let owner = slice["metadata"]["ownerReferences"][0]
                #expect(owner["kind"] == "Endpoints" && owner["name"] == "db" && owner["controller"] == true)
                #expect(owner["uid"] == endpoints["metadata"]["uid"])
                let first = slice["endpoints"].array?.first { $0["addresses"][0] == "192.0.2.10" }
                #expect(first?["nodeName"] == "n1")

                // A change to the Endpoints reaches the slice: an address goes, one becomes ready.
                let patch =
                    #"{"subsets":[{"addresses":[{"ip":"192.0.2.11"},{"ip":"192.0.2.12"}],"ports":[{"name":"pg","port":5432,"protocol":"TCP"}]}]}"#
                #expect(try c.kubectl("patch", "endpoints", "db", "--type=merge", "-p", patch).ok)
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "the slice updated") { items in
                    Self.readiness(Self.mirrored(items, of: "db")) == ["192.0.2.11": true, "192.0.2.12": true]
                }

                // Endpoints gone: so is the slice.
                #expect(try c.kubectl("delete", "endpoints", "db").ok)
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "the slice deleted") { items in
                    Self.mirrored(items, of: "db").isEmpty
                }
            }
        }

        @Test func skipMirrorAndSelectorServicesAreNotMirrored() async throws {
            try await withFixtureCluster { c in
                let yaml = """
                    apiVersion: v1
                    kind: Service
                    metadata: {name: skipped, namespace: default}
                    spec:
                      ports: [{port: 80}]
                    ---
                    apiVersion: v1
                    kind: Endpoints
                    metadata:
                      name: skipped
                      namespace: default
                      labels: {endpointslice.kubernetes.io/skip-mirror: "true"}
                    subsets:
                    - addresses: [{ip: 192.0.2.20}]
                      ports: [{port: 80}]
                    ---
                    apiVersion: v1
                    kind: Service
                    metadata: {name: plain, namespace: default}
                    spec:
                      ports: [{port: 80}]
                    ---
                    apiVersion: v1
                    kind: Endpoints
                    metadata: {name: plain, namespace: default}
                    subsets:
                    - addresses: [{ip: 192.0.2.30}]
                      ports: [{port: 80}]
                    """
                #expect(try c.kubectl("apply", "-f", "-", stdin: yaml).ok)
                // "plain" is synced after "skipped" was seen: once it is mirrored, "skipped" was passed over.
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "plain mirrored") { items in
                    Self.readiness(Self.mirrored(items, of: "plain")) == ["192.0.2.30": true]
                }
                var slices = try await c.client.list(Registry.endpointSlices, namespace: "default").items
                #expect(Self.mirrored(slices, of: "skipped").isEmpty)

                // The Service gains a selector: the endpoints controller takes its Endpoints over (and
                // labels them skip-mirror), and the mirrored slice goes.
                #expect(try c.kubectl("patch", "service", "plain", "-p", #"{"spec":{"selector":{"app":"x"}}}"#).ok)
                try await c.waitFor(Registry.endpointSlices, namespace: "default", "plain's mirror gone") { items in
                    Self.mirrored(items, of: "plain").isEmpty
                }
                try await c.waitFor(Registry.endpoints, namespace: "default", "plain's Endpoints managed") { items in
                    items.first { $0["metadata"]["name"] == "plain" }?["metadata"]["labels"][
                        "endpointslice.kubernetes.io/skip-mirror"] == "true"
                }
                slices = try await c.client.list(Registry.endpointSlices, namespace: "default").items
                #expect(Self.mirrored(slices, of: "plain").isEmpty)
            }
        }

        @Test func atMostAThousandAddressesPerSubsetAreMirrored() {
            var e = CoreV1.Endpoints()
            e.metadata.name = "big"
            e.metadata.namespace = "default"
            var subset = CoreV1.EndpointSubset()
            subset.addresses = (0..<1200).map { CoreV1.EndpointAddress(ip: "10.1.\($0 / 256).\($0 % 256)") }
            subset.notReadyAddresses = [CoreV1.EndpointAddress(ip: "not-an-ip")]
            subset.ports = [CoreV1.EndpointPort(name: "http", port: 80, protocol: .tcp)]
            var v6 = CoreV1.EndpointSubset()
            v6.addresses = [CoreV1.EndpointAddress(ip: "2001:db8:0::1")]
            v6.ports = subset.ports
            e.subsets = [subset, v6]
            let desired = EndpointSliceMirroringController.desiredSlices(e)
            #expect(desired.slices.map(\.addressType) == ["IPv4", "IPv6"])
            #expect(desired.slices[0].endpoints.count == 1000)
            #expect(desired.slices[1].endpoints[0].addresses == ["2001:db8::1"])
            // 200 over the limit, and the invalid one (reached after the limit, so counted as skipped only).
            #expect(desired.skipped == 201)
            #expect(desired.invalid == 0)
        }
    }
}
