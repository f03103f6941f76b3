import BerthEngine
import Synchronization

/// `GET /events`: the engine's event log — shared with the `berth` CLI and every other daemon on the
/// same root — as docker's stream of JSON objects, one a line, each flushed as it is written.
extension DockerAPI {
    static let eventFilterKeys: Set<String> = ["type", "event", "container", "image", "network", "volume", "label"]

    func events(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(
            Self.eventFilterKeys.union(["daemon", "plugin", "node", "service", "secret", "config", "scope"]))
        for type in filters.values("type")
        where ![
            "container", "image", "volume", "network", "daemon", "plugin", "node", "service",
            "secret", "config", "builder",
        ].contains(type) {
            throw DockerAPIError.badRequest("invalid filter 'type=\(type)'")
        }
        var selection = EventLog.Filter()
        for key in Self.eventFilterKeys where !filters.values(key).isEmpty {
            selection.values[key] = filters.values(key)
        }
        let since = try Self.time(request.value("since"), name: "since")
        let until = try Self.time(request.value("until"), name: "until")
        if let since, let until, since > until {
            throw DockerAPIError.badRequest(
                "`since` time (\(request.value("since") ?? "")) cannot be after `until` time (\(request.value("until") ?? ""))"
            )
        }
        // The head goes out at once: the CLI waits for it before it shows anything.
        response.begin(contentType: "application/json")
        let gone = Atomic(false)
        engine.events.read(
            since: since, until: until, filter: selection,
            emit: { event in
                guard !gone.load(ordering: .relaxed) else { return }
                do { try response.write(JSONBody.encode(event) + [10]) } catch { gone.store(true, ordering: .relaxed) }
            }, shouldStop: { gone.load(ordering: .relaxed) || response.cancellation.isCancelled })
        response.finish()
    }
}
