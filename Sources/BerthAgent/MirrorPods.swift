import BerthAPI
import BerthControl
import BerthKube

/// Mirror pods (the kubelet's mirror client): a static pod runs from its file, and the API gets a copy
/// of it — annotated `kubernetes.io/config.mirror` with the static pod's hash and owned by the Node —
/// so that kubectl sees it, the scheduler counts it and its status has somewhere to go. A mirror pod
/// deleted through the API is made again (the static pod keeps running); one whose static pod is gone
/// or changed is deleted.
extension NodeAgent {
    /// The kubelet's IsStaticPod: a pod from a source other than the API server (here, a file).
    static func isStatic(_ pod: CoreV1.Pod) -> Bool {
        pod.metadata.annotations[StaticPodManifest.sourceAnnotation].map { $0 != "api" } ?? false
    }

    /// Static pods and their mirrors: what the kubelet treats as critical whatever their priority.
    static func isStaticOrMirror(_ pod: CoreV1.Pod) -> Bool {
        isStatic(pod) || StaticPodManifest.isMirror(pod)
    }

    /// The API's mirror pod of this version of `staticPod`, if there is one and it is not being deleted.
    func mirrorPod(of staticPod: CoreV1.Pod) -> CoreV1.Pod? {
        guard let mirror = pods.get(staticPod.cacheKey), mirror.metadata.deletionTimestamp == nil,
            let hash = staticPod.metadata.annotations[StaticPodManifest.hashAnnotation],
            mirror.metadata.annotations[StaticPodManifest.mirrorAnnotation] == hash
        else { return nil }
        return mirror
    }

    /// The mirror pod of `staticPod`, made (after deleting a stale or deleted one) if missing. Failures
    /// are logged, not thrown: the static pod runs whether or not the API server takes its mirror.
    func ensureMirrorPod(of staticPod: CoreV1.Pod) async -> CoreV1.Pod? {
        if let mirror = mirrorPod(of: staticPod) { return mirror }
        // A stale or deleted mirror goes first; a pod of the API's own under the same name is not ours to
        // delete (the create below then fails with AlreadyExists, and is tried again).
        if let stale = pods.get(staticPod.cacheKey), StaticPodManifest.isMirror(stale) { await deleteMirrorPod(stale) }
        var mirror = staticPod
        mirror.metadata.uid = nil
        mirror.metadata.resourceVersion = nil
        var annotations = mirror.metadata.annotations
        annotations[StaticPodManifest.mirrorAnnotation] =
            staticPod.metadata.annotations[
                StaticPodManifest.hashAnnotation]
        mirror.metadata.annotations = annotations
        if let nodeUID {
            mirror.metadata.ownerReferences = [
                MetaV1.OwnerReference(
                    apiVersion: "v1", kind: "Node", name: configuration.nodeName, uid: nodeUID, controller: true)
            ]
        }
        do {
            return try await client.create(mirror)
        } catch let error as APIError where error.code == 409 {
            // The informer has not seen a mirror made (or not yet deleted) moments ago: the next sync
            // looks again.
            await queue.addSoon(staticPod.cacheKey, after: .seconds(1))
            return nil
        } catch {
            logger.warning(
                "could not create the mirror pod of a static pod",
                metadata: ["pod": "\(staticPod.cacheKey)", "error": "\(error)"])
            await queue.addSoon(staticPod.cacheKey, after: .seconds(5))
            return nil
        }
    }

    /// Deletes a mirror pod at once (grace 0, this exact object), as the kubelet deletes stale ones.
    func deleteMirrorPod(_ mirror: CoreV1.Pod) async {
        do {
            try await client.delete(
                CoreV1.Pod.self, namespace: mirror.metadata.namespace, name: mirror.metadata.name ?? "",
                gracePeriod: 0, uid: mirror.metadata.uid)
        } catch let error as APIError where error.code == 404 || error.code == 409 {
        } catch {
            logger.warning(
                "could not delete a mirror pod", metadata: ["pod": "\(mirror.cacheKey)", "error": "\(error)"])
        }
    }
}
