import BerthAPI
import BerthKube
import Foundation

/// The typed facts the ReplicaSet and Deployment controllers share: how a pod template is named by its
/// hash and compared, and how a typed selector is matched.

extension BerthAPI.LabelSelector {
    /// The API server's matcher for a typed selector (an absent one has no requirements, so callers
    /// check `isEmpty` before trusting it to select anything).
    init(_ selector: MetaV1.LabelSelector?) {
        self.init(object: selector?.kubeJSON() ?? .null)
    }
}

extension CoreV1.PodTemplateSpec {
    /// The template without the label a controller adds to tell its revisions apart, and without a
    /// creationTimestamp (which a template never meaningfully has): what upstream's EqualIgnoreHash
    /// compares a Deployment's template with a ReplicaSet's on. Typed equality treats an empty list or
    /// map as an absent one, as apimachinery's semantic equality does.
    func ignoringLabel(_ label: String) -> CoreV1.PodTemplateSpec {
        var template = self
        template.metadata.labels[label] = nil
        template.metadata.creationTimestamp = nil
        return template
    }

    /// The pod-template-hash: kube's safe alphabet over an FNV-1a hash of the template's JSON (keys
    /// sorted, without `hashLabel` and creationTimestamp), salted with the collision count once names
    /// collided.
    ///
    /// The bytes are those the controller hashed when it read the stored JSON tree, so that a ReplicaSet
    /// created before it read typed objects keeps its name: the typed encoding writes an unset
    /// creationTimestamp as `null` (the server strips it from a stored template) and an empty metadata
    /// as `{}` (the JSON form dropped it), and both are removed here. What the typed model cannot hold
    /// (a `null` or empty list the client sent) is not in the hash; a template differing only there was
    /// equal before too, so no ReplicaSet is renamed for it (the new ReplicaSet is found by comparison,
    /// not by name).
    func podTemplateHash(label: String, collisionCount: Int32?) -> String {
        var json = ignoringLabel(label).kubeJSON()
        json["metadata"]["creationTimestamp"] = .null
        if json["metadata"].object?.isEmpty == true { json["metadata"] = .null }
        return Objects.shortHash(json.serialized(), salt: Int64(collisionCount ?? 0))
    }
}

extension HasObjectMeta {
    /// The controller owner reference, when it names `kind` (e.g. a pod's ReplicaSet).
    func controllerRef(kind: String) -> MetaV1.OwnerReference? {
        controllerRef.flatMap { $0.kind == kind ? $0 : nil }
    }
}
