import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore

/// `metrics.k8s.io/v1beta1` — NodeMetrics and PodMetrics, what `kubectl top` reads — served by the API
/// server itself from the node agents' `/stats/summary` (the kubelet Summary API; hollow nodes' synthetic
/// one in process, ``NodeSummarySource``), asked for on demand
/// instead of metrics-server's scrape loop: CPU is the agents' rate over their last sampling interval,
/// memory the working set, and an object without a rate yet is left out, as metrics-server leaves it.
extension Handler {
    static let metricsVersion = "v1beta1"
    /// The agents' sampling interval, which their CPU rates cover.
    static let metricsWindow = "10s"

    func resourceMetrics(_ call: Call, version: String, rest: [String]) async throws -> Response {
        guard version == Self.metricsVersion else { throw APIError.pathNotFound() }
        guard call.method == .get else { throw APIError.methodNotAllowed("") }
        let selector = try LabelSelector(call.query["labelSelector"] ?? "")
        switch rest.count {
        case 1 where rest[0] == "nodes":
            return reply(call, list("NodeMetricsList", try await nodeMetrics(selector: selector)))
        case 2 where rest[0] == "nodes":
            guard let item = try await nodeMetrics(selector: selector, only: rest[1]).first else {
                throw APIError(
                    code: 404, reason: "NotFound", message: "nodemetrics.metrics.k8s.io \"\(rest[1])\" not found",
                    details: ["name": .string(rest[1]), "group": "metrics.k8s.io", "kind": "nodemetrics"])
            }
            return reply(call, item)
        case 1 where rest[0] == "pods":
            return reply(call, list("PodMetricsList", try await podMetrics(namespace: nil, selector: selector)))
        case 3 where rest[0] == "namespaces" && rest[2] == "pods":
            return reply(call, list("PodMetricsList", try await podMetrics(namespace: rest[1], selector: selector)))
        case 4 where rest[0] == "namespaces" && rest[2] == "pods":
            guard let item = try await podMetrics(namespace: rest[1], selector: selector, only: rest[3]).first else {
                throw APIError(
                    code: 404, reason: "NotFound", message: "podmetrics.metrics.k8s.io \"\(rest[3])\" not found",
                    details: ["name": .string(rest[3]), "group": "metrics.k8s.io", "kind": "podmetrics"])
            }
            return reply(call, item)
        default:
            throw APIError.pathNotFound()
        }
    }

    private func list(_ kind: String, _ items: [JSON]) -> JSON {
        ["kind": .string(kind), "apiVersion": "metrics.k8s.io/v1beta1", "metadata": [:], "items": .array(items)]
    }

    /// Each node's Summary, asked of all agents at once; a node that does not answer is left out.
    private func summaries(nodes: [JSON]) async -> [(node: JSON, summary: JSON)] {
        await withTaskGroup(of: (JSON, JSON)?.self) { group in
            for node in nodes {
                group.addTask {
                    if let local = self.server.nodeSummaries.summary(node: node["metadata"]["name"].string ?? "") {
                        return (node, local)
                    }
                    guard let base = try? await self.agentBase(["spec": ["nodeName": node["metadata"]["name"]]]),
                        !base.hasSuffix(":0")
                    else { return nil }
                    var request = HTTPClientRequest(url: base + "/stats/summary")
                    request.method = .GET
                    guard let response = try? await self.server.nodeAgents.http.execute(request, timeout: .seconds(5)),
                        response.status == .ok, let body = try? await response.body.collect(upTo: 32 << 20),
                        let summary = try? JSON.parse(Array(buffer: body))
                    else { return nil }
                    return (node, summary)
                }
            }
            var out: [(JSON, JSON)] = []
            for await result in group { if let result { out.append(result) } }
            return out
        }
    }

    private static func usage(cpu: JSON, memory: JSON) -> JSON? {
        guard let nanoCores = cpu["usageNanoCores"].int, let workingSet = memory["workingSetBytes"].int else {
            return nil
        }
        return ["cpu": .string("\(nanoCores)n"), "memory": .string("\(workingSet / 1024)Ki")]
    }

    private func nodeMetrics(selector: LabelSelector, only name: String? = nil) async throws -> [JSON] {
        let nodesType = Registry.find(group: "", version: "v1", plural: "nodes")!
        var nodes = try await LocalClient(server: server, manager: "metrics").list(nodesType).items
        nodes = nodes.filter { node in
            (name == nil || node["metadata"]["name"].string == name)
                && selector.matches(node["metadata"]["labels"].stringMap)
        }
        let now = APITime.string()
        return await summaries(nodes: nodes).compactMap { node, summary -> JSON? in
            let stats = summary["node"]
            guard let usage = Self.usage(cpu: stats["cpu"], memory: stats["memory"]) else { return nil }
            return [
                "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": [
                    "name": node["metadata"]["name"], "creationTimestamp": .string(now),
                    "labels": node["metadata"]["labels"],
                ],
                "timestamp": stats["cpu"]["time"], "window": .string(Self.metricsWindow), "usage": usage,
            ]
        }.sorted { ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "") }
    }

    func podMetrics(namespace: String?, selector: LabelSelector, only name: String? = nil) async throws
        -> [JSON]
    {
        let podsType = Registry.find(group: "", version: "v1", plural: "pods")!
        let pods = try await LocalClient(server: server, manager: "metrics").list(podsType, namespace: namespace).items
            .filter { pod in
                (name == nil || pod["metadata"]["name"].string == name)
                    && selector.matches(pod["metadata"]["labels"].stringMap)
                    && !(pod["spec"]["nodeName"].string ?? "").isEmpty
            }
        let wanted = Dictionary(
            pods.map { ($0["metadata"]["uid"].string ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        let nodeNames = Set(pods.compactMap { $0["spec"]["nodeName"].string })
        let nodes = nodeNames.map { JSON.object(["metadata": ["name": .string($0)]]) }
        let now = APITime.string()
        var items: [JSON] = []
        for (_, summary) in await summaries(nodes: nodes) {
            for stats in summary["pods"].array ?? [] {
                guard let uid = stats["podRef"]["uid"].string, let pod = wanted[uid] else { continue }
                var containers: [JSON] = []
                var complete = true
                for container in stats["containers"].array ?? [] {
                    guard let usage = Self.usage(cpu: container["cpu"], memory: container["memory"]) else {
                        complete = false
                        break
                    }
                    containers.append(["name": container["name"], "usage": usage])
                }
                guard complete, !containers.isEmpty else { continue }
                items.append([
                    "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": [
                        "name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                        "creationTimestamp": .string(now), "labels": pod["metadata"]["labels"],
                    ],
                    "timestamp": stats["cpu"]["time"].isNull ? .string(now) : stats["cpu"]["time"],
                    "window": .string(Self.metricsWindow), "containers": .array(containers),
                ])
            }
        }
        return items.sorted {
            ($0["metadata"]["namespace"].string ?? "", $0["metadata"]["name"].string ?? "")
                < ($1["metadata"]["namespace"].string ?? "", $1["metadata"]["name"].string ?? "")
        }
    }
}
