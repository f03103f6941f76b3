import BerthCRIProtocol
import BerthEngine
import BerthOS
import GRPCCore
import Synchronization

/// GetContainerEvents: the engine's container events as the CRI's (the kubelet's evented PLEG): created,
/// started, stopped (the engine's `die`) and deleted, for the CRI's containers only, each with its pod
/// sandbox's status and the statuses of the sandbox's containers, from the moment the call is made.
extension CRIRuntime {
    static func eventType(_ action: String) -> Runtime_V1_ContainerEventType? {
        switch action {
        case "create": .containerCreatedEvent
        case "start": .containerStartedEvent
        case "die": .containerStoppedEvent
        case "destroy": .containerDeletedEvent
        default: nil
        }
    }

    /// The response for one engine event, nil for a container that is not the CRI's.
    func containerEvent(_ event: EngineEvent, sandboxOf: [String: String]) -> Runtime_V1_ContainerEventResponse? {
        guard let type = Self.eventType(event.Action) else { return nil }
        let id = event.Actor.ID
        guard let sandboxID = containers.all[id]?.sandboxID ?? sandboxOf[id] else { return nil }
        var response = Runtime_V1_ContainerEventResponse()
        response.containerID = id
        response.containerEventType = type
        response.createdAt = Int64(event.timeNano)
        if let sandbox = sandboxes.get(sandboxID) {
            response.podSandboxStatus = sandboxStatus(sandbox)
            for (memberID, entry) in containers.all where entry.sandboxID == sandboxID {
                guard let record = try? engine.lookup(memberID) else { continue }
                response.containersStatuses.append(containerStatus(memberID, entry, record))
            }
        }
        return response
    }

    /// Streams events until `writer` fails (the client went) or the task is cancelled.
    func streamContainerEvents(_ writer: RPCWriter<Runtime_V1_ContainerEventResponse>) async throws {
        let (events, continuation) = AsyncStream<EngineEvent>.makeStream()
        let stop = Atomic(false)
        var containerEvents = EventLog.Filter()
        containerEvents.values["type"] = ["container"]
        let filter = containerEvents
        let log = engine.events
        BlockingThread.start(name: "cri-events") {
            log.read(
                since: nil, until: nil, filter: filter, emit: { continuation.yield($0) },
                shouldStop: { stop.load(ordering: .relaxed) })
            continuation.finish()
        }
        defer { stop.store(true, ordering: .relaxed) }
        // A deleted container is gone from the store by the time its event is read: remember the sandbox.
        // A created one may not be in it yet (CreateContainer records it after the engine made it, and the
        // engine's event can be read first): its engine record names its sandbox.
        var sandboxOf: [String: String] = containers.all.mapValues(\.sandboxID)
        try await withTaskCancellationHandler {
            for await event in events {
                let id = event.Actor.ID
                if let entry = containers.all[id] {
                    sandboxOf[id] = entry.sandboxID
                } else if sandboxOf[id] == nil, let sandbox = (try? engine.lookup(id))?.configuration.pod?.sandboxID {
                    sandboxOf[id] = sandbox
                }
                guard let response = containerEvent(event, sandboxOf: sandboxOf) else { continue }
                try await writer.write(response)
            }
        } onCancel: {
            stop.store(true, ordering: .relaxed)
        }
    }
}
