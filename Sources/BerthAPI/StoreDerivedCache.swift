import BerthStore

/// An actor that keeps something read from the store (the RBAC policy, the admission configuration,
/// the flow-control configuration) and reads it again after any change under its prefix: a store watch
/// marks it stale (writes of any server of the cluster), and a watch that ends marks it stale too and
/// lets the next read start another.
protocol StoreDerivedCache: Actor {
    /// A watch runs (set by `watchForChanges`).
    var watching: Bool { get set }
    /// Drops what is kept: the next read loads it again.
    func invalidate()
}

extension StoreDerivedCache {
    func watchForChanges(_ store: any KVStore, prefix: String) async throws {
        watching = true
        let events = try await store.watch(prefix: prefix, afterRevision: try await store.currentRevision())
        Task { [weak self] in
            do {
                for try await _ in events { await self?.invalidate() }
            } catch {}
            await self?.watchEnded()
        }
    }

    func watchEnded() {
        watching = false
        invalidate()
    }
}
