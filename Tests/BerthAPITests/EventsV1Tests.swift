import BerthAPI
import Foundation
import Testing

extension APITests {
    /// events.k8s.io/v1 Events: the core Events seen through the newer group (issue 16), as client-go's
    /// events library and kube-scheduler write them.
    @Suite("events.k8s.io", .serialized)
    struct EventsV1Tests {
        @Test func bothGroupsServeTheSameEventsInTheirOwnShapes() async throws {
            let s = try await TestServer()
            let resources = try s.kubectl("api-resources", "--api-group=events.k8s.io")
            #expect(resources.stdout.contains("events.k8s.io/v1"), "\(resources.stdout)")
            let made = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: events.k8s.io/v1
                    kind: Event
                    metadata: {name: web.1}
                    eventTime: "2026-12-06T10:00:00.000000Z"
                    reportingController: example.com/operator
                    reportingInstance: operator-1
                    action: Scaling
                    reason: ScaledUp
                    type: Normal
                    note: scaled web to 3
                    regarding: {kind: Deployment, name: web, namespace: default, apiVersion: apps/v1}
                    """)
            #expect(made.ok, "\(made.stderr)")
            // The core view: involvedObject, message, reportingComponent.
            let core = try s.kubectl(
                "get", "events.v1.", "web.1", "-o",
                "jsonpath={.involvedObject.name}/{.message}/{.reportingComponent}/{.reason}")
            #expect(core.stdout == "web/scaled web to 3/example.com/operator/ScaledUp", "\(core.stdout)")
            #expect(try s.kubectl("get", "events").stdout.contains("deployment/web"))

            // A core Event (what kubectl and Berth's own controllers write) read through events.k8s.io.
            let coreEvent =
                #"{"apiVersion":"v1","kind":"Event","metadata":{"name":"pod.1"},"involvedObject":{"kind":"Pod","name":"p","namespace":"default"},"reason":"Pulled","message":"pulled","source":{"component":"kubelet"},"count":3,"firstTimestamp":"2026-12-06T10:00:00Z","lastTimestamp":"2026-12-06T10:01:00Z","type":"Normal"}"#
            #expect(try s.kubectl("create", "-f", "-", stdin: coreEvent).ok)
            let (code, viewed) = try s.curl("GET", "/apis/events.k8s.io/v1/namespaces/default/events/pod.1")
            #expect(code == 200)
            #expect(viewed["apiVersion"] == "events.k8s.io/v1" && viewed["regarding"]["name"] == "p")
            #expect(viewed["note"] == "pulled" && viewed["deprecatedCount"] == 3)
            #expect(viewed["deprecatedSource"]["component"] == "kubelet" && viewed["involvedObject"].isNull)
            let selected = try s.kubectl(
                "get", "events.events.k8s.io", "--field-selector", "regarding.kind=Pod", "-o", "name")
            #expect(selected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "event.events.k8s.io/pod.1")

            // What this group requires of a new event, in upstream's words; an update changes only the series.
            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin:
                    #"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"bad"},"type":"Odd","deprecatedCount":2}"#
            )
            expectMentions(
                bad.stderr,
                [
                    "eventTime: Required value", #"type: Invalid value: "": has invalid value: Odd"#,
                    #"deprecatedCount: Invalid value: "": needs to be unset"#, "reportingController: Required value",
                    "reportingInstance: Required value", "action: Required value", "reason: Required value",
                ])
            let changed = try s.kubectl(
                "patch", "events.events.k8s.io", "web.1", "--type=merge", "-p", #"{"note":"other"}"#)
            expectMentions(changed.stderr, [#"note: Invalid value: "other": field is immutable"#])
            await s.stop()
        }
    }
}
