import BerthAPI
import BerthKube
import Foundation

/// A StatefulSet's PersistentVolumeClaims (upstream stateful_pod_control.go and stateful_set_utils.go):
/// each pod's claims, `<template>-<set>-<ordinal>`, are created from volumeClaimTemplates before the pod,
/// and outlive it. persistentVolumeClaimRetentionPolicy decides who owns them, so the garbage collector
/// removes them at the right time: whenDeleted Delete makes the set an owner (they go with the set),
/// whenScaled Delete makes a condemned pod one (they go with the pod the scale-down removes), Retain
/// neither.
extension StatefulSetController {
    typealias Claim = CoreV1.PersistentVolumeClaim

    /// getPersistentVolumeClaims: the claims of the pod at `ordinal`, from the templates, labelled with
    /// the set's selector labels.
    static func claims(for set: StatefulSet, ordinal: Int) -> [Claim] {
        set.spec.volumeClaimTemplates.map { template in
            var claim = template
            claim.metadata.name = claimName(set, template: template.metadata.name ?? "", ordinal: ordinal)
            claim.metadata.namespace = set.metadata.namespace
            claim.metadata.uid = nil
            claim.metadata.resourceVersion = nil
            for (k, v) in set.spec.selector?.matchLabels ?? [:] { claim.metadata.labels[k] = v }
            claim.status = CoreV1.PersistentVolumeClaimStatus()
            return claim
        }
    }

    /// Creates the claims of the pod at `ordinal` that do not exist yet (createPersistentVolumeClaims).
    func createClaims(_ set: StatefulSet, ordinal: Int, podName: String) async throws {
        let setName = set.metadata.name ?? ""
        for var claim in Self.claims(for: set, ordinal: ordinal) {
            let name = claim.metadata.name ?? ""
            if claims.get(namespace: claim.metadata.namespace, name: name) != nil { continue }
            _ = Self.claimOwnership(set, ordinal: ordinal, claim: &claim, pod: nil)
            do {
                _ = try await client.create(claim)
                events.record(
                    set, reason: "SuccessfulCreate",
                    message: "create Claim \(name) Pod \(podName) in StatefulSet \(setName) success")
            } catch let e as APIError where e.reason == "AlreadyExists" {
            } catch {
                events.record(
                    set, type: "Warning", reason: "FailedCreate",
                    message: "create Claim \(name) for Pod \(podName) in StatefulSet \(setName) failed error: \(error)")
                throw error
            }
        }
    }

    /// Brings the owner references of every pod's claims in line with the retention policy
    /// (updateClaimOwnerRefForSetAndPod), before a scale-down deletes a pod whose claims go with it.
    func reconcileClaimOwners(_ set: StatefulSet, pods owned: [Pod]) async throws {
        if set.spec.volumeClaimTemplates.isEmpty { return }
        let setName = set.metadata.name ?? ""
        for pod in owned where !pod.isTerminating {
            guard let ordinal = StatefulSetPlan.ordinal(podName: pod.metadata.name ?? "", setName: setName) else {
                continue
            }
            for template in Self.claims(for: set, ordinal: ordinal) {
                guard var claim = claims.get(namespace: set.metadata.namespace, name: template.metadata.name ?? "")
                else { continue }
                guard Self.claimOwnership(set, ordinal: ordinal, claim: &claim, pod: pod) else { continue }
                do {
                    _ = try await client.update(claim)
                } catch let e as APIError where e.code == 409 || e.code == 404 {}
            }
        }
    }

    /// Sets or removes the set's and the pod's owner references on `claim` as the policy says. Returns
    /// whether anything changed.
    static func claimOwnership(_ set: StatefulSet, ordinal: Int, claim: inout Claim, pod: Pod?) -> Bool {
        let policy = set.spec.persistentVolumeClaimRetentionPolicy
        let whenDeleted = policy?.whenDeleted == .deletePersistentVolumeClaimRetentionPolicyType
        let whenScaled = policy?.whenScaled == .deletePersistentVolumeClaimRetentionPolicyType
        let start = Int(set.spec.ordinals?.start ?? 0)
        let scaledDown = !(start..<(start + Int(set.spec.replicas ?? 1))).contains(ordinal)
        let before = claim.metadata.ownerReferences
        func reference<T: KubeObject & HasObjectMeta>(_ owner: T) -> MetaV1.OwnerReference {
            MetaV1.OwnerReference(
                apiVersion: T.servedAPIVersion, kind: T.servedKind, name: owner.metadata.name ?? "",
                uid: owner.metadata.uid ?? "")
        }
        func own<T: KubeObject & HasObjectMeta>(_ owner: T, _ on: Bool) {
            let uid = owner.metadata.uid ?? ""
            let has = claim.metadata.ownerReferences.contains { $0.uid == uid }
            if on && !has { claim.metadata.ownerReferences.append(reference(owner)) }
            if !on && has { claim.metadata.ownerReferences.removeAll { $0.uid == uid } }
        }
        own(set, whenDeleted && !(whenScaled && scaledDown))
        if let pod { own(pod, whenScaled && scaledDown) }
        return claim.metadata.ownerReferences != before
    }
}
