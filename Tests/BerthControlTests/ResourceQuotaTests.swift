import BerthAPI
import BerthControl
import BerthKube
import Foundation
import Testing

extension ControlTests {
    /// core/v1 ResourceQuota: the admission that charges and refuses, the controller that counts (issue 16).
    @Suite("resource quotas") struct ResourceQuotaTests {
        func pod(_ name: String, cpu: String? = nil, memory: String? = nil, scheduler: String = "default-scheduler")
            -> String
        {
            var resources: [String] = []
            if let cpu { resources.append(#""requests":{"cpu":"\#(cpu)"}"#) }
            if let memory { resources.append(#""limits":{"memory":"\#(memory)"}"#) }
            return
                #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)"},"spec":{"schedulerName":"\#(scheduler)","terminationGracePeriodSeconds":0,"containers":[{"name":"\#(name)","image":"busybox","resources":{\#(resources.joined(separator: ","))}}]}}"#
        }

        /// The quota's `status.used` as `name=value` pairs, sorted.
        static func used(_ items: [JSON], _ quota: String) -> String {
            let used = items.first { $0["metadata"]["name"].string == quota }?["status"]["used"].object ?? [:]
            return used.keys.sorted().map { "\($0)=\(used[$0]?.string ?? "")" }.joined(separator: ",")
        }

        @Test func podsAreChargedRefusedOverTheLimitAndGivenBackWhenDeleted() async throws {
            let c = try await Cluster(hollowNodes: 1)
            defer { Task { await c.stop() } }
            let created = try c.kubectl("create", "quota", "compute", "--hard=pods=2,requests.cpu=1,limits.memory=1Gi")
            #expect(created.ok, "\(created.stderr)")
            try await c.waitFor(Registry.resourceQuotas, namespace: "default", "the quota counted") {
                Self.used($0, "compute") == "limits.memory=0,pods=0,requests.cpu=0"
            }
            // A quota on cpu and memory makes every container state them (upstream's message).
            var out = try c.kubectl("create", "-f", "-", stdin: pod("bare"))
            #expect(
                out.stderr.contains(
                    #"pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: bare; requests.cpu for: bare"#
                ), "\(out.stderr)")
            for name in ["a", "b"] {
                out = try c.kubectl("create", "-f", "-", stdin: pod(name, cpu: "500m", memory: "512Mi"))
                #expect(out.ok, "\(out.stderr)")
            }
            // The admission charged both before the controller counted: the third is over at once.
            out = try c.kubectl("create", "-f", "-", stdin: pod("c", cpu: "500m", memory: "512Mi"))
            #expect(
                out.stderr.contains(
                    #"pods "c" is forbidden: exceeded quota: compute, requested: limits.memory=512Mi,pods=1,requests.cpu=500m, used: limits.memory=1Gi,pods=2,requests.cpu=1, limited: limits.memory=1Gi,pods=2,requests.cpu=1"#
                ), "\(out.stderr)")
            // A dry run is judged the same and charges nothing.
            out = try c.kubectl("create", "--dry-run=server", "-f", "-", stdin: pod("d", cpu: "100m", memory: "1Mi"))
            #expect(out.stderr.contains("exceeded quota: compute"), "\(out.stderr)")
            try await c.waitFor(Registry.resourceQuotas, namespace: "default", "both pods counted") {
                Self.used($0, "compute") == "limits.memory=1Gi,pods=2,requests.cpu=1"
            }
            let table = try c.kubectl("get", "quota")
            #expect(
                table.stdout.contains("pods: 2/2, requests.cpu: 1/1")
                    && table.stdout.contains("limits.memory: 1Gi/1Gi"),
                "\(table.stdout)")

            // A deleted pod's share comes back, and the next pod fits.
            out = try c.kubectl("delete", "pod", "a", "--wait=true")
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.resourceQuotas, namespace: "default", "the deleted pod given back") {
                Self.used($0, "compute") == "limits.memory=512Mi,pods=1,requests.cpu=500m"
            }
            out = try c.kubectl("create", "-f", "-", stdin: pod("c", cpu: "500m", memory: "512Mi"))
            #expect(out.ok, "\(out.stderr)")

            // A Deployment past the quota: its ReplicaSet's creates are refused and say why.
            out = try c.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=1")
            #expect(out.ok, "\(out.stderr)")
            try await c.waitFor(Registry.events, namespace: "default", "the ReplicaSet's FailedCreate") { events in
                events.contains {
                    $0["reason"].string == "FailedCreate"
                        && ($0["message"].string ?? "").contains("failed quota: compute: must specify")
                }
            }
        }

        @Test func objectCountsServicesAndScopes() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            #expect(try c.kubectl("create", "namespace", "team").ok)
            var out = try c.kubectl(
                "create", "quota", "objects", "-n", "team",
                "--hard=services=2,services.loadbalancers=0,count/configmaps=2")
            #expect(out.ok, "\(out.stderr)")
            // The namespace's kube-root-ca.crt is one of the two ConfigMaps.
            try await c.waitFor(ResourceType.of(CoreV1.ConfigMap.self), namespace: "team", "kube-root-ca.crt") {
                $0.count == 1
            }
            #expect(try c.kubectl("create", "configmap", "one", "-n", "team").ok)
            out = try c.kubectl("create", "configmap", "two", "-n", "team")
            #expect(
                out.stderr.contains(
                    #"configmaps "two" is forbidden: exceeded quota: objects, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"#
                ), "\(out.stderr)")
            out = try c.kubectl("create", "service", "loadbalancer", "lb", "--tcp=80", "-n", "team")
            #expect(
                out.stderr.contains(
                    "exceeded quota: objects, requested: services.loadbalancers=1, used: services.loadbalancers=0, limited: services.loadbalancers=0"
                ), "\(out.stderr)")
            #expect(try c.kubectl("create", "service", "clusterip", "web", "--tcp=80", "-n", "team").ok)
            // An update that uses more is charged too.
            out = try c.kubectl("patch", "service", "web", "-n", "team", "-p", #"{"spec":{"type":"LoadBalancer"}}"#)
            #expect(out.stderr.contains("exceeded quota: objects"), "\(out.stderr)")
            #expect(try c.kubectl("create", "service", "clusterip", "api", "--tcp=80", "-n", "team").ok)
            out = try c.kubectl("create", "service", "clusterip", "third", "--tcp=80", "-n", "team")
            #expect(
                out.stderr.contains("requested: services=1, used: services=2, limited: services=2"), "\(out.stderr)")
            try await c.waitFor(Registry.resourceQuotas, namespace: "team", "the objects counted") {
                Self.used($0, "objects") == "count/configmaps=2,services=2,services.loadbalancers=0"
            }

            // A scoped quota charges only the pods it selects: one BestEffort pod, any number of others.
            out = try c.kubectl("create", "quota", "besteffort", "-n", "team", "--hard=pods=1", "--scopes=BestEffort")
            #expect(out.ok, "\(out.stderr)")
            let unscheduled = "nobody"
            #expect(try c.kubectl("create", "-n", "team", "-f", "-", stdin: pod("free", scheduler: unscheduled)).ok)
            out = try c.kubectl("create", "-n", "team", "-f", "-", stdin: pod("free2", scheduler: unscheduled))
            #expect(out.stderr.contains("exceeded quota: besteffort, requested: pods=1"), "\(out.stderr)")
            for name in ["paid", "paid2"] {
                out = try c.kubectl(
                    "create", "-n", "team", "-f", "-", stdin: pod(name, cpu: "10m", scheduler: unscheduled))
                #expect(out.ok, "\(out.stderr)")
            }
        }

        @Test func quotasAreValidated() async throws {
            let c = try await Cluster()
            defer { Task { await c.stop() } }
            var out = try c.kubectl("create", "quota", "bad", "--hard=widgets=1")
            #expect(
                out.stderr.contains(
                    #"spec.hard[widgets]: Invalid value: "widgets": must be a standard resource for quota"#),
                "\(out.stderr)")
            out = try c.kubectl("create", "quota", "bad", "--hard=pods=1500m")
            #expect(
                out.stderr.contains(#"spec.hard[pods]: Invalid value: "1500m": must be an integer"#), "\(out.stderr)")
            out = try c.kubectl("create", "quota", "bad", "--hard=cpu=-1")
            #expect(out.stderr.contains("must be greater than or equal to 0"), "\(out.stderr)")
            out = try c.kubectl("create", "quota", "bad", "--hard=pods=1", "--scopes=BestEffort,NotBestEffort")
            #expect(out.stderr.contains("conflicting scopes"), "\(out.stderr)")
            out = try c.kubectl("create", "quota", "bad", "--hard=cpu=1", "--scopes=BestEffort")
            #expect(out.stderr.contains("unsupported scope applied to resource"), "\(out.stderr)")
            out = try c.kubectl(
                "create", "-f", "-",
                stdin:
                    #"{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"bad"},"spec":{"hard":{"pods":"1"},"scopeSelector":{"matchExpressions":[{"scopeName":"PriorityClass","operator":"In"}]}}}"#
            )
            #expect(
                out.stderr.contains("spec.scopeSelector.matchExpressions[0].values: Required value"), "\(out.stderr)")
            #expect(try c.kubectl("get", "quota", "-o", "name").stdout.isEmpty)
        }
    }
}
