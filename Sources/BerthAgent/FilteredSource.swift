import BerthControl
import BerthKube

/// An object source that keeps only what `keep` accepts: a node agent's pods among every pod of an
/// in-process store (remote agents ask the server with a field selector instead). A pod becomes ours
/// when it is bound and never stops being ours (spec.nodeName cannot change), so changes to others'
/// objects are simply dropped and the informer's cache holds only ours.
struct FilteredSource<Object: HasObjectMeta>: ObjectSource {
    let inner: any ObjectSource<Object>
    let keep: @Sendable (Object) -> Bool

    func list() async throws -> (items: [Object], revision: Int64) {
        let (items, revision) = try await inner.list()
        return (items.filter(keep), revision)
    }

    func watch(afterRevision revision: Int64) async throws -> AsyncThrowingStream<SourceEvent<Object>, any Error> {
        let upstream = try await inner.watch(afterRevision: revision)
        let keep = self.keep
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in upstream {
                        switch event {
                        case .put(let object, let revision):
                            if keep(object) { continuation.yield(.put(object, revision: revision)) }
                        case .delete(let object, let revision):
                            if keep(object) { continuation.yield(.delete(object, revision: revision)) }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
