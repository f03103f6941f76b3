import BerthAPI
import BerthKube
import Foundation
import Logging

/// Writes Events in the background so a scheduler or controller never waits on them. Like client-go's
/// broadcaster the buffer is bounded: when a burst outruns the store, further events are dropped (and
/// counted) rather than slowing the component that reports them.
public final class EventRecorder: @unchecked Sendable {
    struct Item: Sendable {
        var object: JSON; var type: String; var reason: String; var message: String; var component: String
    }
    private let lock = NSLock()
    private var buffer: [Item] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private(set) public var dropped = 0
    let capacity: Int

    public init(capacity: Int = 4096) { self.capacity = capacity }

    /// Queues an Event about `object` ("Normal" or "Warning").
    public func record(
        _ object: JSON, type: String = "Normal", reason: String, message: String,
        component: String = "berth-controller-manager"
    ) {
        let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            if buffer.count >= capacity { dropped += 1; return nil }
            buffer.append(Item(object: object, type: type, reason: reason, message: message, component: component))
            defer { waiter = nil }
            return waiter
        }
        w?.resume()
    }

    private func take() async -> [Item] {
        while true {
            let items = lock.withLock { () -> [Item] in
                defer { buffer = [] }; return buffer
            }
            if !items.isEmpty { return items }
            if Task.isCancelled { return [] }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = lock.withLock { () -> Bool in
                        if !buffer.isEmpty { return true }
                        waiter = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            } onCancel: {
                let w = self.lock.withLock { () -> CheckedContinuation<Void, Never>? in
                    defer { self.waiter = nil }; return self.waiter
                }
                w?.resume()
            }
        }
    }

    /// A recorder that reports as `component` (the FROM column of `kubectl describe`).
    public func component(_ name: String) -> ComponentRecorder { ComponentRecorder(sink: self, component: name) }

    /// Writes queued events with `client` (a few at a time) until cancelled.
    public func run(client: any KubeClient) async {
        while !Task.isCancelled {
            let items = await take()
            if items.isEmpty { continue }
            await withTaskGroup(of: Void.self) { g in
                var running = 0
                for item in items {
                    if running >= 8 { _ = await g.next(); running -= 1 }
                    g.addTask {
                        await client.event(
                            about: item.object, type: item.type, reason: item.reason, message: item.message,
                            component: item.component)
                    }
                    running += 1
                }
            }
        }
    }
}

/// Records events as one component.
public struct ComponentRecorder: Sendable {
    let sink: EventRecorder
    public let component: String
    public func record(_ object: JSON, type: String = "Normal", reason: String, message: String) {
        sink.record(object, type: type, reason: reason, message: message, component: component)
    }
}

extension ComponentRecorder {
    /// Records an event about a typed object (its kind, name, namespace, uid and resourceVersion are
    /// what the Event's involvedObject takes).
    public func record<T: KubeObject & HasObjectMeta>(
        _ object: T, type: String = "Normal", reason: String, message: String
    ) {
        var reference: JSON = ["apiVersion": .string(T.servedAPIVersion), "kind": .string(T.servedKind)]
        reference["metadata"] = [
            "name": object.metadata.name.map(JSON.string) ?? .null,
            "namespace": object.metadata.namespace.map(JSON.string) ?? .null,
            "uid": object.metadata.uid.map(JSON.string) ?? .null,
            "resourceVersion": object.metadata.resourceVersion.map(JSON.string) ?? .null,
        ]
        record(reference, type: type, reason: reason, message: message)
    }
}
