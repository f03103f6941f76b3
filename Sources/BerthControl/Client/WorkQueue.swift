import Foundation

/// client-go's rate-limited work queue: a key is queued at most once; a key being processed that is
/// added again is processed again after `done`, never by two workers at once; failures come back with
/// exponential back-off.
public actor WorkQueue {
    private var queue: [String] = []
    private var head = 0
    private var dirty: Set<String> = []
    private var processing: Set<String> = []
    private var waiters: [CheckedContinuation<String?, Never>] = []
    private var failures: [String: Int] = [:]
    private var shuttingDown = false
    /// Keys with a coalesced add pending (`addSoon`).
    private var soon: Set<String> = []
    public let name: String

    public init(name: String) { self.name = name }

    public func add(_ key: String) {
        if shuttingDown || dirty.contains(key) { return }
        dirty.insert(key)
        if processing.contains(key) { return }
        if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: key); dirty.remove(key); processing.insert(key); return
        }
        queue.append(key)
    }

    /// Adds `key` after `delay` (periodic resyncs, waiting for a deadline).
    public nonisolated func add(_ key: String, after delay: Duration) {
        Task {
            try? await Task.sleep(for: delay); await self.add(key)
        }
    }

    /// Adds `key` after `delay` unless an add from an earlier call is still pending: a burst of
    /// events for one key becomes one sync (client-go's AddAfter keeps one entry per key the same way).
    public func addSoon(_ key: String, after delay: Duration) {
        if shuttingDown || !soon.insert(key).inserted { return }
        Task {
            try? await Task.sleep(for: delay)
            self.firedSoon(key)
        }
    }
    private func firedSoon(_ key: String) {
        soon.remove(key)
        add(key)
    }

    /// Re-adds a key that failed, after 5 ms · 2^failures (at most 10 s).
    public func retry(_ key: String) {
        let n = failures[key, default: 0]
        failures[key] = n + 1
        let ms = min(5 * (1 << min(n, 12)), 10_000)
        add(key, after: .milliseconds(ms))
    }
    /// Clears the failure count of a key that succeeded.
    public func forget(_ key: String) { failures[key] = nil }

    /// The next key, or nil once shut down.
    public func get() async -> String? {
        if head < queue.count {
            let key = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
            dirty.remove(key)
            processing.insert(key)
            return key
        }
        if shuttingDown { return nil }
        return await withCheckedContinuation { waiters.append($0) }
    }

    public func done(_ key: String) {
        processing.remove(key)
        if dirty.contains(key) {
            if !waiters.isEmpty {
                dirty.remove(key); processing.insert(key); waiters.removeFirst().resume(returning: key)
            } else {
                queue.append(key)
            }
        }
    }

    public var depth: Int { queue.count - head }

    public func shutdown() {
        shuttingDown = true
        for w in waiters { w.resume(returning: nil) }
        waiters = []
    }
}

/// A controller's loop: workers take keys from the queue and call `sync`; an error re-queues the key
/// with back-off. Runs until cancelled.
public func runWorkers(
    _ queue: WorkQueue, count: Int, sync: @escaping @Sendable (String) async throws -> Void,
    onError: @escaping @Sendable (String, any Error) -> Void
) async {
    await withTaskCancellationHandler {
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<count {
                g.addTask {
                    while let key = await queue.get() {
                        do {
                            try await sync(key)
                            await queue.forget(key)
                        } catch {
                            onError(key, error)
                            await queue.retry(key)
                        }
                        await queue.done(key)
                    }
                }
            }
        }
    } onCancel: {
        Task { await queue.shutdown() }
    }
}

/// Runs `body` for every element, at most `width` at a time.
public func forEachConcurrently<S: Sequence>(
    _ items: S, width: Int, _ body: @escaping @Sendable (S.Element) async -> Void
) async where S.Element: Sendable {
    await withTaskGroup(of: Void.self) { g in
        var running = 0
        for item in items {
            if running >= width { _ = await g.next(); running -= 1 }
            g.addTask { await body(item) }
            running += 1
        }
    }
}
