import BerthAPI
import BerthControl
import BerthKube
import Foundation

/// The kubelet's token manager: the bound tokens of pods' projected `serviceAccountToken` volumes,
/// asked of the API server (TokenRequest, bound to the pod) and kept until they are due for renewal —
/// past 80 % of their lifetime or a day old, as the kubelet renews them. The agent rewrites the
/// volumes holding tokens due (``NodeAgent/refreshTokens()``), so a pod always reads a valid one.
actor ServiceAccountTokens {
    struct Issued {
        var token: String
        var issuedAt: Date
        var expiresAt: Date

        /// The kubelet's requiresRefresh: past 80 % of the lifetime, or older than 24 hours.
        func isDue(at now: Date) -> Bool {
            let lifetime = expiresAt.timeIntervalSince(issuedAt)
            return now >= issuedAt.addingTimeInterval(lifetime * 0.8) || now >= issuedAt.addingTimeInterval(86_400)
        }
    }

    private var issued: [String: Issued] = [:]

    static func key(_ pod: CoreV1.Pod, _ projection: CoreV1.ServiceAccountTokenProjection) -> String {
        let account = pod.spec.serviceAccountName ?? "default"
        return [
            pod.metadata.uid ?? "", account, projection.audience ?? "", String(projection.expirationSeconds ?? 3600),
        ].joined(separator: "|")
    }

    /// The pod's token for `projection`: the one held, unless due, else a new one from the API server.
    func token(for pod: CoreV1.Pod, _ projection: CoreV1.ServiceAccountTokenProjection, client: any KubeClient)
        async throws -> String
    {
        let key = Self.key(pod, projection)
        let now = Date()
        if let held = issued[key], !held.isDue(at: now) { return held.token }
        var request = AuthenticationV1.TokenRequest()
        if let audience = projection.audience, !audience.isEmpty { request.spec.audiences = [audience] }
        request.spec.expirationSeconds = projection.expirationSeconds ?? 3600
        request.spec.boundObjectRef = AuthenticationV1.BoundObjectReference(
            kind: "Pod", apiVersion: "v1", name: pod.metadata.name, uid: pod.metadata.uid)
        let answer: AuthenticationV1.TokenRequest
        do {
            answer = try await client.requestToken(
                namespace: pod.metadata.namespace ?? "default",
                serviceAccount: pod.spec.serviceAccountName ?? "default",
                request)
        } catch {
            throw PodConfigError("failed to fetch token: \((error as? APIError)?.message ?? "\(error)")")
        }
        let expires = answer.status.expirationTimestamp.map {
            Date(timeIntervalSince1970: TimeInterval($0.secondsSince1970))
        }
        issued[key] = Issued(
            token: answer.status.token, issuedAt: now,
            expiresAt: expires ?? now.addingTimeInterval(TimeInterval(request.spec.expirationSeconds ?? 3600)))
        return answer.status.token
    }

    /// Whether any token the pod's volumes hold is due for renewal.
    func anyDue(podUID: String, at now: Date = Date()) -> Bool {
        issued.contains { $0.key.hasPrefix(podUID + "|") && $0.value.isDue(at: now) }
    }

    func forget(podUID: String) {
        issued = issued.filter { !$0.key.hasPrefix(podUID + "|") }
    }
}

extension NodeAgent {
    /// Every minute, the projected volumes of running pods whose tokens are due are written again with
    /// new tokens (in place: the containers' bind mounts see the new files).
    func refreshTokens() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(60))
            for pod in runningPods {
                guard let uid = pod.metadata.uid, await tokens.anyDue(podUID: uid) else { continue }
                await rewriteTokenVolumes(pod)
            }
        }
    }

    func rewriteTokenVolumes(_ pod: CoreV1.Pod) async {
        let uid = pod.metadata.uid ?? ""
        let facts = PodVolumes.Facts(
            podIPs: pod.status.podIPs.map(\.ip), hostIPs: [self.facts.internalIP], nodeName: configuration.nodeName,
            allocatable: nodeStatus().allocatable)
        for volume in pod.spec.volumes {
            guard let source = volume.projected, source.sources.contains(where: { $0.serviceAccountToken != nil })
            else { continue }
            let directory = "\(configuration.rootDirectory)/pods/\(uid)/volumes/kubernetes.io~projected/\(volume.name)"
            guard FileManager.default.fileExists(atPath: directory),
                let container = pod.spec.containers.first(where: { $0.volumeMounts.contains { $0.name == volume.name } }
                )
                    ?? pod.spec.containers.first
            else { continue }
            do {
                let files = try await PodVolumes.projectedFiles(
                    source, container: container, pod: pod, client: client, facts: facts, tokens: tokens)
                try PodVolumes.write(
                    files.mapValues(\.bytes),
                    items: files.keys.sorted().map { CoreV1.KeyToPath(key: $0, path: $0, mode: files[$0]!.mode) },
                    mode: source.defaultMode ?? 0o644, to: directory, what: "projected volume \(volume.name)")
                if let group = pod.spec.securityContext?.fsGroup {
                    PodVolumes.applyGroup(directory, group: gid_t(truncatingIfNeeded: group), readOnly: true)
                }
            } catch {
                recorder.record(
                    pod, type: "Warning", reason: "FailedMount",
                    message: "MountVolume.SetUp failed for volume \"\(volume.name)\" : \(error)")
            }
        }
    }
}
