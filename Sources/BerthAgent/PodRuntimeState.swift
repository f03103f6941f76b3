/// What the agent remembers about its pods between syncs: each container's restart back-off (the
/// kubelet's: 10 s, doubling to 5 minutes, reset after 10 minutes of running) and why a container is
/// waiting (an image that will not pull, a config that cannot be made).
actor PodRuntimeState {
    struct Backoff {
        var delay: Duration
        var until: ContinuousClock.Instant
    }

    static let initialBackoff: Duration = .seconds(10)
    static let maximumBackoff: Duration = .seconds(300)

    private var backoffs: [String: Backoff] = [:]
    private var waiting: [String: (reason: String, message: String)] = [:]
    /// Pods (by UID) the eviction manager chose, with its message: terminated and failed at their next sync.
    private var evictions: [String: String] = [:]

    func markEvicted(podUID: String, message: String) { evictions[podUID] = message }
    func evictionMessage(podUID: String) -> String? { evictions[podUID] }

    static func key(_ podUID: String, _ container: String) -> String { podUID + "/" + container }

    /// How long `key` must still wait before its next attempt, nil when it may go now.
    func remaining(_ key: String) -> Duration? {
        guard let backoff = backoffs[key] else { return nil }
        let left = backoff.until - .now
        return left > .zero ? left : nil
    }

    /// Records a failed attempt (a crash, a failed pull): the next waits `delay`, which doubles.
    @discardableResult
    func failed(_ key: String) -> Duration {
        let delay = backoffs[key].map { min($0.delay * 2, Self.maximumBackoff) } ?? Self.initialBackoff
        backoffs[key] = Backoff(delay: delay, until: .now + delay)
        return delay
    }

    /// The back-off's current delay (for the CrashLoopBackOff message).
    func delay(_ key: String) -> Duration { backoffs[key]?.delay ?? Self.initialBackoff }

    func reset(_ key: String) { backoffs[key] = nil }

    func setWaiting(_ key: String, reason: String, message: String) { waiting[key] = (reason, message) }
    func clearWaiting(_ key: String) { waiting[key] = nil }
    func waitingReason(_ key: String) -> (reason: String, message: String)? { waiting[key] }

    /// Forgets a pod that is gone.
    func forget(podUID: String) {
        backoffs = backoffs.filter { !$0.key.hasPrefix(podUID + "/") }
        waiting = waiting.filter { !$0.key.hasPrefix(podUID + "/") }
        evictions[podUID] = nil
    }
}
