import BerthKube
import Foundation

/// The facts about typed objects several controllers need (the typed twins of ``Objects``; the JSON
/// ones go once every loop reads typed objects).
extension HasObjectMeta {
    /// The controller owner reference (controller: true), if any.
    public var controllerRef: MetaV1.OwnerReference? {
        metadata.ownerReferences.first { $0.controller == true }
    }

    /// The controller owner's UID as an index value (none when not controlled).
    public var controllerUIDs: [String] { controllerRef.map { [$0.uid] } ?? [] }

    /// Being deleted (a deletionTimestamp is set).
    public var isTerminating: Bool { metadata.deletionTimestamp != nil }

    /// A controller owner reference to this object, as a controller sets on what it creates.
    public func ownerReference(kind: String, apiVersion: String) -> MetaV1.OwnerReference {
        MetaV1.OwnerReference(
            apiVersion: apiVersion, kind: kind, name: metadata.name ?? "", uid: metadata.uid ?? "",
            controller: true, blockOwnerDeletion: true)
    }
}

extension KubeObject where Self: HasObjectMeta {
    /// A controller owner reference to this object, with its served kind and apiVersion.
    public var controllerOwnerReference: MetaV1.OwnerReference {
        ownerReference(kind: Self.servedKind, apiVersion: Self.servedAPIVersion)
    }
}

extension CoreV1.Pod {
    /// A pod from a controller's template (upstream's GetPodFromTemplate): named after the owner, in
    /// its namespace, controlled by it, with the template's labels, annotations, finalizers and spec.
    static func from<Owner: KubeObject & HasObjectMeta>(_ template: CoreV1.PodTemplateSpec, controlledBy owner: Owner)
        -> CoreV1.Pod
    {
        var pod = CoreV1.Pod()
        pod.metadata.generateName = (owner.metadata.name ?? "") + "-"
        pod.metadata.namespace = owner.metadata.namespace
        pod.metadata.ownerReferences = [owner.controllerOwnerReference]
        pod.metadata.labels = template.metadata.labels
        pod.metadata.annotations = template.metadata.annotations
        pod.metadata.finalizers = template.metadata.finalizers
        pod.spec = template.spec
        return pod
    }

    /// Succeeded or Failed: it will not run again.
    public var isFinished: Bool { status.phase == .succeeded || status.phase == .failed }

    /// Counts toward a controller's replicas: not finished, not being deleted.
    public var isActive: Bool { !isTerminating && !isFinished }

    public var readyCondition: CoreV1.PodCondition? { status.conditions.first { $0.type == .ready } }

    public var isReady: Bool { readyCondition?.status == .true }

    /// Ready for at least `minReadySeconds` (kube's "available").
    public func isAvailable(minReadySeconds: Int64, now: Date = Date()) -> Bool {
        guard let condition = readyCondition, condition.status == .true else { return false }
        if minReadySeconds <= 0 { return true }
        guard let since = condition.lastTransitionTime else { return true }
        return Int64(now.timeIntervalSince1970) - since.secondsSince1970 >= minReadySeconds
    }
}

extension IntOrString {
    /// An int-or-percent field resolved against `total` (kube's GetScaledValueFromIntOrPercent:
    /// percentages round up for surge, down otherwise; a malformed string counts as 0).
    public func scaled(total: Int64, roundUp: Bool) -> Int64 {
        switch self {
        case .int(let value): return Int64(value)
        case .string(let text):
            if text.hasSuffix("%"), let percent = Double(text.dropLast()) {
                let x = percent * Double(total) / 100
                return Int64(roundUp ? x.rounded(.up) : x.rounded(.down))
            }
            return Int64(text) ?? 0
        }
    }
}

extension CoreV1.Namespace {
    /// Active and not being deleted: a namespace the controllers that fill namespaces (default
    /// ServiceAccount, root CA) write into.
    public var takesContent: Bool { !isTerminating && (status.phase ?? .active) == .active }
}
