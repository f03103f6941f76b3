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
