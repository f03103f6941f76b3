import BerthAPI
import Foundation
import Testing

extension APITests {
    /// core/v1 LimitRange and the LimitRanger admission of pods (issue 16).
    @Suite("limit ranges", .serialized)
    struct LimitRangeTests {
        func pod(_ name: String, _ containers: String) -> String {
            #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)"},"spec":{"schedulerName":"nobody","containers":\#(containers)}}"#
        }

        @Test func containersGetTheNamespacesDefaultsAndStayWithinItsBounds() async throws {
            let s = try await TestServer()
            let range = """
                apiVersion: v1
                kind: LimitRange
                metadata: {name: bounds}
                spec:
                  limits:
                  - type: Container
                    max: {cpu: "1", memory: 1Gi}
                    min: {cpu: 100m}
                    defaultRequest: {memory: 128Mi}
                  - type: Pod
                    max: {memory: 1536Mi}
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: range)
            #expect(applied.ok, "\(applied.stderr)")
            // Upstream's defaulting of the item: the limit from max, the request from the limit.
            let item = try s.kubectl(
                "get", "limits", "bounds", "-o",
                "jsonpath={.spec.limits[0].default.cpu}/{.spec.limits[0].default.memory}/{.spec.limits[0].defaultRequest.cpu}/{.spec.limits[0].defaultRequest.memory}"
            )
            #expect(item.stdout == "1/1Gi/1/128Mi", "\(item.stdout)")
            #expect(try s.kubectl("get", "limitranges").stdout.contains("CREATED AT"))

            #expect(try s.kubectl("create", "-f", "-", stdin: pod("plain", #"[{"name":"c","image":"busybox"}]"#)).ok)
            let resources = try s.kubectl(
                "get", "pod", "plain", "-o",
                "jsonpath={.spec.containers[0].resources.limits.cpu}/{.spec.containers[0].resources.limits.memory}/{.spec.containers[0].resources.requests.cpu}/{.spec.containers[0].resources.requests.memory}/{.status.qosClass}"
            )
            #expect(resources.stdout == "1/1Gi/1/128Mi/Burstable", "\(resources.stdout)")
            let note = try s.kubectl(
                "get", "pod", "plain", "-o", #"jsonpath={.metadata.annotations.kubernetes\.io/limit-ranger}"#)
            #expect(
                note.stdout
                    == "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c",
                "\(note.stdout)")

            var refused = try s.kubectl(
                "create", "-f", "-",
                stdin: pod("tiny", #"[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"50m"}}}]"#))
            #expect(
                refused.stderr.contains("minimum cpu usage per Container is 100m, but request is 50m"),
                "\(refused.stderr)")
            refused = try s.kubectl(
                "create", "-f", "-",
                stdin: pod("big", #"[{"name":"c","image":"busybox","resources":{"limits":{"memory":"2Gi"}}}]"#))
            #expect(
                refused.stderr.contains("maximum memory usage per Container is 1Gi, but limit is 2Gi"),
                "\(refused.stderr)")
            refused = try s.kubectl(
                "create", "-f", "-",
                stdin: pod(
                    "pair",
                    #"[{"name":"a","image":"busybox","resources":{"limits":{"memory":"1Gi"}}},{"name":"b","image":"busybox","resources":{"limits":{"memory":"1Gi"}}}]"#
                ))
            #expect(
                refused.stderr.contains("maximum memory usage per Pod is 1536Mi, but limit is 2Gi"), "\(refused.stderr)"
            )
            await s.stop()
        }

        @Test func limitRangesAreValidated() async throws {
            let s = try await TestServer()
            var r = try s.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"upside-down"},"spec":{"limits":[{"type":"Container","min":{"cpu":"2"},"max":{"cpu":"1"}}]}}"#
            )
            #expect(r.stderr.contains("min value 2 is greater than max value 1"), "\(r.stderr)")
            r = try s.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"pod-default"},"spec":{"limits":[{"type":"Pod","default":{"cpu":"1"}}]}}"#
            )
            #expect(r.stderr.contains("may not be specified when `type` is 'Pod'"), "\(r.stderr)")
            r = try s.kubectl(
                "apply", "-f", "-",
                stdin:
                    #"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"odd"},"spec":{"limits":[{"type":"Node"}]}}"#
            )
            #expect(r.stderr.contains("Unsupported value: \"Node\""), "\(r.stderr)")
            await s.stop()
        }
    }
}
