import BerthStore
import Logging
import ServiceLifecycle

/// The loop of a status writer inside the API server (FlowSchemas' Dangling condition, admission
/// policies' type checks): reconcile everything, then again on each change under `prefix`, until the
/// server shuts down. A failed pass is logged and the loop starts over half a second later.
func reconcileOnChanges(
    _ store: any KVStore, prefix: String, what: String, logger: Logger,
    _ reconcile: @escaping @Sendable () async throws -> Int64
) async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
        do {
            let revision = try await reconcile()
            let events = try await store.watch(prefix: prefix, afterRevision: revision)
            try await cancelWhenGracefulShutdown {
                for try await _ in events { _ = try await reconcile() }
            }
            return
        } catch is CancellationError {
            return
        } catch {
            if Task.isShuttingDownGracefully { return }
            logger.warning("\(what): \(error)")
            try? await gracefulShutdownAwareSleep(for: .milliseconds(500))
        }
    }
}
