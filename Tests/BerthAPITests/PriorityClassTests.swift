import BerthAPI
import Foundation
import Testing

extension APITests {
    /// scheduling.k8s.io/v1 PriorityClass and the Priority admission of pods (issue 16), through kubectl.
    @Suite("priority classes", .serialized)
    struct PriorityClassTests {
        func pod(_ name: String, _ spec: String = "") -> String {
            #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)"},"spec":{"schedulerName":"nobody",\#(spec)"containers":[{"name":"c","image":"busybox"}]}}"#
        }

        @Test func podsTakeTheirPriorityFromTheirClass() async throws {
            let s = try await TestServer()
            // The built-in classes, as kubectl prints them.
            let listed = try s.kubectl("get", "priorityclasses")
            #expect(listed.ok, "\(listed.stderr)")
            #expect(listed.stdout.contains("VALUE") && listed.stdout.contains("GLOBAL-DEFAULT"))
            #expect(listed.stdout.contains("system-node-critical") && listed.stdout.contains("2000001000"))
            #expect(listed.stdout.contains("system-cluster-critical") && listed.stdout.contains("2000000000"))

            // kubectl create sends protobuf.
            let created = try s.kubectl("create", "priorityclass", "high", "--value=1000", "--description=batch")
            #expect(created.ok, "\(created.stderr)")
            #expect(
                try s.kubectl("get", "pc", "high", "-o", "jsonpath={.preemptionPolicy}").stdout
                    == "PreemptLowerPriority")

            #expect(try s.kubectl("create", "-f", "-", stdin: pod("plain")).ok)
            #expect(try s.kubectl("get", "pod", "plain", "-o", "jsonpath={.spec.priority}").stdout == "0")
            #expect(try s.kubectl("create", "-f", "-", stdin: pod("urgent", #""priorityClassName":"high","#)).ok)
            #expect(try s.kubectl("get", "pod", "urgent", "-o", "jsonpath={.spec.priority}").stdout == "1000")
            let critical = try s.kubectl(
                "create", "-f", "-", stdin: pod("node-agent", #""priorityClassName":"system-node-critical","#))
            #expect(critical.ok, "\(critical.stderr)")

            var refused = try s.kubectl("create", "-f", "-", stdin: pod("lost", #""priorityClassName":"nope","#))
            #expect(refused.stderr.contains("no PriorityClass with name nope was found"), "\(refused.stderr)")
            refused = try s.kubectl(
                "create", "-f", "-", stdin: pod("liar", #""priorityClassName":"high","priority":5,"#))
            #expect(
                refused.stderr.contains(
                    "the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000"
                ), "\(refused.stderr)")

            // A global default: pods without a class get it; a second default is refused.
            #expect(try s.kubectl("create", "priorityclass", "low", "--value=10", "--global-default").ok)
            #expect(try s.kubectl("create", "-f", "-", stdin: pod("defaulted")).ok)
            #expect(
                try s.kubectl("get", "pod", "defaulted", "-o", "jsonpath={.spec.priorityClassName}/{.spec.priority}")
                    .stdout == "low/10")
            refused = try s.kubectl("create", "priorityclass", "lower", "--value=5", "--global-default")
            #expect(
                refused.stderr.contains("PriorityClass low is already marked as default. Only one default can exist"),
                "\(refused.stderr)")
            await s.stop()
        }

        @Test func classesAreValidatedAndTheSystemOnesKept() async throws {
            let s = try await TestServer()
            var r = try s.kubectl("create", "priorityclass", "huge", "--value=2000000000")
            #expect(
                r.stderr.contains("value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
                "\(r.stderr)")
            r = try s.kubectl("create", "priorityclass", "system-mine", "--value=5")
            #expect(
                r.stderr.contains(
                    "reserved for system use only. error: name system-mine is not a known system priority class"),
                "\(r.stderr)")
            r = try s.kubectl("create", "priorityclass", "odd", "--value=5", "--preemption-policy=Sometimes")
            #expect(r.stderr.contains("Unsupported value: \"Sometimes\""), "\(r.stderr)")
            #expect(try s.kubectl("create", "priorityclass", "mid", "--value=500", "--preemption-policy=Never").ok)
            r = try s.kubectl("patch", "priorityclass", "mid", "-p", #"{"value":600}"#)
            #expect(r.stderr.contains("value: Forbidden: may not be changed in an update."), "\(r.stderr)")
            #expect(try s.kubectl("patch", "priorityclass", "mid", "-p", #"{"description":"middling"}"#).ok)
            r = try s.kubectl("delete", "priorityclass", "system-cluster-critical")
            #expect(r.stderr.contains("this is a system priority class and cannot be deleted"), "\(r.stderr)")
            #expect(try s.kubectl("delete", "priorityclass", "mid").ok)
            await s.stop()
        }
    }
}

extension APITests {
    /// core/v1 PodTemplate (issue 16, the rest of core/v1).
    @Suite("pod templates", .serialized)
    struct PodTemplateTests {
        @Test func podTemplatesAreStoredWithThePodSpecDefaultsAndChecks() async throws {
            let s = try await TestServer()
            let template = """
                apiVersion: v1
                kind: PodTemplate
                metadata: {name: worker}
                template:
                  metadata: {labels: {app: worker}}
                  spec:
                    containers: [{name: main, image: "busybox:1"}]
                """
            let applied = try s.kubectl("apply", "-f", "-", stdin: template)
            #expect(applied.ok, "\(applied.stderr)")
            let table = try s.kubectl("get", "podtemplates")
            #expect(table.stdout.contains("CONTAINERS") && table.stdout.contains("POD LABELS"), "\(table.stdout)")
            #expect(
                table.stdout.contains("worker") && table.stdout.contains("busybox:1")
                    && table.stdout.contains("app=worker"))
            let defaults = try s.kubectl(
                "get", "podtemplate", "worker", "-o",
                "jsonpath={.template.spec.restartPolicy}/{.template.spec.containers[0].imagePullPolicy}")
            #expect(defaults.stdout == "Always/IfNotPresent", "\(defaults.stdout)")
            let empty = try s.kubectl(
                "apply", "-f", "-",
                stdin: #"{"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"empty"},"template":{"spec":{}}}"#)
            #expect(!empty.ok && empty.stderr.contains("template.spec.containers"), "\(empty.stderr)")
            #expect(try s.kubectl("delete", "podtemplate", "worker").ok)
            await s.stop()
        }
    }
}

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
