import BerthCRIProtocol
import BerthKube
import Foundation

/// postStart and preStop hooks, as the kubelet runs them: exec through the CRI's ExecSync, httpGet
/// from the node to the pod's address, sleep. A failed postStart kills the container
/// (FailedPostStartHook), which its restartPolicy then restarts; preStop runs before the stop signal
/// and its time comes out of the grace period (never less than 2 s left, the kubelet's minimum).
extension NodeAgent {
    static let minimumGracePeriod: Int64 = 2
    /// Seconds an httpGet postStart hook may take.
    static let httpHookTimeout: Int64 = 30

    /// Runs `handler` for the container; nil when it succeeded, else the kubelet's words for why not.
    func runHook(
        _ handler: CoreV1.LifecycleHandler, pod: CoreV1.Pod, containerName: String, containerID: String,
        podIP: String, timeout: Int64
    ) async -> String? {
        let described = "\(pod.metadata.name ?? "")_\(pod.metadata.namespace ?? "")(\(pod.metadata.uid ?? ""))"
        if let sleep = handler.sleep {
            let seconds = timeout > 0 ? min(sleep.seconds, timeout) : sleep.seconds
            try? await Task.sleep(for: .seconds(max(0, min(seconds, 86_400))))
            return nil
        }
        var probe = CoreV1.Probe()
        probe.exec = handler.exec
        probe.httpGet = handler.httpGet
        guard probe.exec != nil || probe.httpGet != nil else {
            return
                "Lifecycle hook for Container \"\(containerName)\" in Pod \"\(described)\" is of a kind the kubelet no longer runs (tcpSocket)"
        }
        let target = Prober.Target(
            podKey: "\(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? "")", podUID: pod.metadata.uid ?? "",
            containerName: containerName, containerID: containerID, podIP: podIP, probes: [], gracePeriod: timeout)
        let (succeeded, output) = await Prober.run(probe, target: target, timeout: timeout, agent: self)
        if succeeded { return nil }
        if let exec = handler.exec {
            return
                "Exec lifecycle hook (\(exec.command)) for Container \"\(containerName)\" in Pod \"\(described)\" failed - error: command '\(exec.command.joined(separator: " "))' exited with a failure, message: \"\(output)\""
        }
        return
            "HTTP lifecycle hook (\(handler.httpGet?.path ?? "")) for Container \"\(containerName)\" in Pod \"\(described)\" failed - error: \(output)"
    }

    /// After StartContainer: the postStart hook, and the container killed when it fails.
    func runPostStart(
        _ container: CoreV1.Container, pod: CoreV1.Pod, containerID: String, podIP: String, grace: Int64
    ) async -> Bool {
        guard let hook = container.lifecycle?.postStart else { return true }
        // No time limit on an exec postStart (the kubelet gives none); an HTTP one gets its own.
        guard
            let failure = await runHook(
                hook, pod: pod, containerName: container.name, containerID: containerID, podIP: podIP,
                timeout: hook.exec != nil ? 0 : Self.httpHookTimeout)
        else { return true }
        recorder.record(pod, type: "Warning", reason: "FailedPostStartHook", message: failure)
        recorder.record(
            pod, reason: "Killing", message: "FailedPostStartHook: Container \(container.name) failed post-start hook")
        var stop = Runtime_V1_StopContainerRequest()
        stop.containerID = containerID
        stop.timeout = grace
        _ = try? await cri.runtime.stopContainer(stop)
        return false
    }

    /// Before StopContainer: the preStop hook within the grace period; returns the grace left.
    func runPreStop(
        _ container: CoreV1.Container?, pod: CoreV1.Pod, containerID: String, podIP: String, grace: Int64
    ) async -> Int64 {
        guard let container, let hook = container.lifecycle?.preStop, grace > 0 else { return grace }
        let started = ContinuousClock.now
        let failure = await withTaskGroup(of: String??.self) { group in
            group.addTask {
                await self.runHook(
                    hook, pod: pod, containerName: container.name, containerID: containerID, podIP: podIP,
                    timeout: grace)
            }
            // A hook that outlasts the grace period is abandoned, as the kubelet abandons it.
            group.addTask {
                try? await Task.sleep(for: .seconds(min(grace, 86_400 * 365)))
                return .some(nil)
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? nil
        }
        if let failure {
            recorder.record(pod, type: "Warning", reason: "FailedPreStopHook", message: failure)
        }
        let spent = Int64((ContinuousClock.now - started).components.seconds)
        return max(Self.minimumGracePeriod, grace - spent)
    }
}
