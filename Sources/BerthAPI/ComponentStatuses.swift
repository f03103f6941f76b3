import Foundation
import Hummingbird

/// core/v1 ComponentStatus (`kubectl get componentstatuses`, deprecated upstream since 1.19 but still
/// served and still typed by people who learnt Kubernetes before): the health of the scheduler, the
/// controller manager and the datastore, computed on each read rather than stored. kube-apiserver
/// probes the components' healthz ports; Berth's scheduler and controllers run in the server holding
/// the kube-system/berth-controller-manager Lease, so they are healthy while some server renews it.
enum ComponentStatuses {
    static let resource = ResourceType(
        group: "", version: "v1", kind: "ComponentStatus", plural: "componentstatuses", singular: "componentstatus",
        namespaced: false, shortNames: ["cs"], hasSpec: false, strategy: ComponentStatusStrategy())
    static let deprecation = "v1 ComponentStatus is deprecated in v1.19+"

    static func status(_ name: String, healthy: Bool, message: String, error: String = "") -> JSON {
        var condition: JSON = ["type": "Healthy", "status": healthy ? "True" : "False", "message": .string(message)]
        if !error.isEmpty { condition["error"] = .string(error) }
        return [
            "kind": "ComponentStatus", "apiVersion": "v1",
            "metadata": ["name": .string(name), "creationTimestamp": .null], "conditions": [condition],
        ]
    }
}

/// kubectl's columns for component statuses.
struct ComponentStatusStrategy: ResourceStrategy {
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Status", description: "Status of the component conditions"),
            .init(name: "Message", description: "Message of the component conditions"),
            .init(name: "Error", description: "Error of the component conditions"),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let condition = (obj["conditions"].array ?? []).first { $0["type"].string == "Healthy" } ?? [:]
        let healthy = condition["status"].string == "True"
        return [
            Tables.nameCell(obj), .string(healthy ? "Healthy" : "Unhealthy"),
            .string(condition["message"].string ?? ""), .string(condition["error"].string ?? ""),
        ]
    }
}

extension Handler {
    func componentStatuses(_ call: Call, name: String?) async throws -> Response {
        let r = ComponentStatuses.resource
        guard call.method == .get || call.method == .head else {
            throw APIError(
                code: 405, reason: "MethodNotAllowed",
                message: "the server does not allow this method on the requested resource")
        }
        call.warnings.add(ComponentStatuses.deprecation)
        var items: [JSON] = []
        // The control plane's loops: healthy while their Lease is renewed in time.
        let lease = try await storedObject(Registry.leases, namespace: "kube-system", name: "berth-controller-manager")
        let renewed = APITime.parse(lease?["spec"]["renewTime"].string)
        let duration = Double(lease?["spec"]["leaseDurationSeconds"].int ?? 15)
        let held = renewed.map { Date().timeIntervalSince($0) <= duration } ?? false
        let holder = lease?["spec"]["holderIdentity"].string ?? ""
        for component in ["scheduler", "controller-manager"] {
            items.append(
                held
                    ? ComponentStatuses.status(component, healthy: true, message: "ok")
                    : ComponentStatuses.status(
                        component, healthy: false, message: "",
                        error: lease == nil
                            ? "no server has taken the kube-system/berth-controller-manager Lease"
                            : "the kube-system/berth-controller-manager Lease (\(holder)) has not been renewed for \(Int(Date().timeIntervalSince(renewed ?? .distantPast))) s"
                    ))
        }
        do {
            _ = try await store.currentRevision()
            items.append(ComponentStatuses.status("etcd-0", healthy: true, message: "ok"))
        } catch {
            items.append(ComponentStatuses.status("etcd-0", healthy: false, message: "", error: "\(error)"))
        }
        var call = call
        call.render = try Rendering.negotiate(call.accept, .resource(apiVersion: "v1", kind: "ComponentStatus"))
        call.resource = r
        if let name {
            guard let item = items.first(where: { $0["metadata"]["name"].string == name }) else {
                throw APIError.notFound(r, name)
            }
            return reply(call, item)
        }
        return reply(
            call, ["kind": "ComponentStatusList", "apiVersion": "v1", "metadata": [:], "items": .array(items)])
    }
}
