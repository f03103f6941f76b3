#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS
import FoundationEssentials

/// The container endpoints: list, create, inspect, start, stop, restart, kill, remove.
extension DockerAPI {
    // MARK: List

    struct ContainerSummary: Encodable {
        struct Port: Encodable {
            var IP: String?
            var PrivatePort: UInt16
            var PublicPort: UInt16?
            var `Type`: String
        }
        var Id: String
        var Names: [String]
        var Image: String
        var ImageID: String
        var Command: String
        var Created: Int
        var Ports: [Port]
        var Labels: [String: String]
        var State: String
        var Status: String
        var HostConfig: [String: String]
        var NetworkSettings: [String: [String: ContainerInspect.EndpointSection]]
        var Mounts: [ContainerInspect.MountSection]
    }

    func listContainers(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["status", "name", "id", "label", "exited", "ancestor"])
        for status in filters.values("status") where ContainerStatus(rawValue: status) == nil {
            throw DockerAPIError.badRequest("invalid filter 'status=\(status)'")
        }
        var records = engine.list()
        // Without all=1, only running containers — unless a status filter asks for others (docker's rule).
        if !request.flag("all") && filters.values("status").isEmpty { records = records.filter { $0.state.running } }
        records = records.filter { r in
            filters.matches("status") { $0 == r.state.status.rawValue }
                && filters.matches("name") { r.name.contains($0.hasPrefix("/") ? String($0.dropFirst()) : $0) }
                && filters.matches("id") { r.id.hasPrefix($0) }
                && filters.matches("exited") { r.state.status == .exited && String(r.state.exitCode) == $0 }
                && filters.matches("ancestor") { $0 == r.imageReference || $0 == r.imageName || r.imageID.contains($0) }
                && filters.matchesLabel(r.configuration.labels.merging(r.imageConfig?.Labels ?? [:]) { a, _ in a })
        }
        if let limit = try request.integer("limit"), limit > 0 { records = Array(records.prefix(limit)) }
        response.json(records.map { summary($0) })
    }

    func summary(_ r: ContainerRecord) -> ContainerSummary {
        let inspect = ContainerInspect(r, layout: engine.layout)
        var ports: [ContainerSummary.Port] = []
        var published = Set<String>()
        if r.state.running {
            for p in r.publishedPorts {
                ports.append(
                    .init(
                        IP: p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP, PrivatePort: p.containerPort,
                        PublicPort: p.hostPort, Type: p.proto))
                published.insert("\(p.containerPort)/\(p.proto)")
            }
        }
        for port in Set(r.exposedPorts).sorted() where !published.contains(port) {
            if let parsed = try? ContainerCreateRequest.port(port) {
                ports.append(.init(PrivatePort: parsed.port, Type: parsed.proto))
            }
        }
        return ContainerSummary(
            Id: r.id, Names: ["/" + r.name], Image: r.imageReference, ImageID: r.imageID,
            Command: ([r.path] + r.args).joined(separator: " "), Created: Timestamp.parse(r.created)?.seconds ?? 0,
            Ports: ports, Labels: inspect.Config.Labels, State: r.state.status.rawValue, Status: r.statusText,
            HostConfig: ["NetworkMode": r.configuration.networkMode],
            NetworkSettings: ["Networks": inspect.NetworkSettings.Networks], Mounts: inspect.Mounts)
    }

    // MARK: Create and inspect

    struct CreateResponse: Encodable {
        var Id: String
        var Warnings: [String]
    }

    func createContainer(_ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try ContainerCreateRequest.decode(request.body)
        let configuration = try body.configuration(defaults: engine.configuration)
        var name = request.value("name").flatMap { $0.isEmpty ? nil : $0 }
        if let n = name, n.hasPrefix("/") { name = String(n.dropFirst()) }
        let record = try engine.create(configuration, name: name)
        hub.notify()
        response.json(CreateResponse(Id: record.id, Warnings: []), status: .created)
    }

    func inspectContainer(_ reference: String, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        response.json(ContainerInspect(record, layout: engine.layout))
    }

    // MARK: Start, stop, restart, kill, remove

    func startContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        if let keys = request.value("detachKeys"), !keys.isEmpty { throw unsupported("detachKeys") }
        let record = try engine.lookup(reference)
        if record.state.status == .running || record.state.status == .paused {
            return response.send(.notModified)
        }
        try start(record)
        response.send(.noContent)
    }

    /// Starts a container, handing the attachments waiting for it their connections to its monitor.
    /// A container with `AutoRemove` that fails to start is removed (as dockerd does).
    func start(_ record: ContainerRecord) throws {
        let pending = hub.takePending(record.id)
        let connection: BerthOS.FileDescriptor?
        do {
            connection = try engine.start(record.id, attach: !pending.isEmpty)
        } catch {
            for attachment in pending { attachment.end() }
            if record.configuration.autoRemove { try? engine.remove(record.id, force: true) }
            hub.notify()
            throw error
        }
        hub.notify()
        if let first = pending.first {
            if let connection { first.run(connection) } else { connect(first) }
            for other in pending.dropFirst() { connect(other) }
        }
    }

    func stopContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        let timeout = try request.integer("t") ?? request.integer("timeout")
        let signal = request.value("signal").flatMap { $0.isEmpty ? nil : $0 }
        if let signal { _ = try RunOptionParser.parseSignal(signal) }
        guard record.state.running else { return response.send(.notModified) }
        try engine.stop(record.id, timeout: timeout, signal: signal)
        hub.notify()
        response.send(.noContent)
    }

    func restartContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        let timeout = try request.integer("t") ?? request.integer("timeout")
        let signal = request.value("signal").flatMap { $0.isEmpty ? nil : $0 }
        if let signal { _ = try RunOptionParser.parseSignal(signal) }
        if record.state.running {
            try engine.stop(record.id, timeout: timeout, signal: signal)
            hub.notify()
        }
        // A --rm container is gone once stopped (its exit command removed it), as with docker.
        try start(try engine.lookup(record.id))
        response.send(.noContent)
    }

    func killContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let signal = try RunOptionParser.parseSignal(
            request.value("signal").flatMap { $0.isEmpty ? nil : $0 } ?? "KILL")
        let record = try engine.lookup(reference)
        try engine.kill(record.id, signal: signal)
        hub.notify()
        response.send(.noContent)
    }

    func removeContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        if request.flag("link") { throw unsupported("removing links") }
        let record = try engine.lookup(reference)
        try engine.remove(record.id, force: request.flag("force"), volumes: request.flag("v"))
        execs.forget(containerID: record.id)
        hub.notify()
        response.send(.noContent)
    }
}

/// docker's `filters` query parameter: `{"status":["running"]}`, or the older `{"status":{"running":true}}`.
struct Filters {
    var entries: [String: [String]] = [:]

    static func parse(_ text: String?) throws(DockerAPIError) -> Filters {
        guard let text, !text.isEmpty else { return Filters() }
        let data = Data(text.utf8)
        if let lists = try? JSONDecoder().decode([String: [String]].self, from: data) { return Filters(entries: lists) }
        if let maps = try? JSONDecoder().decode([String: [String: Bool]].self, from: data) {
            return Filters(entries: maps.mapValues { $0.filter(\.value).map(\.key).sorted() })
        }
        throw .badRequest("invalid filter: the filters parameter must be a JSON object of lists")
    }

    func allow(_ keys: Set<String>) throws(DockerAPIError) {
        for key in entries.keys.sorted() where !keys.contains(key) { throw .badRequest("invalid filter '\(key)'") }
    }

    func values(_ key: String) -> [String] { entries[key] ?? [] }

    /// True when the filter is absent or one of its values matches (values of one key are alternatives).
    func matches(_ key: String, _ test: (String) -> Bool) -> Bool {
        guard let wanted = entries[key], !wanted.isEmpty else { return true }
        return wanted.contains(where: test)
    }

    /// `label=key` or `label=key=value`: every one given must hold (docker ANDs labels).
    func matchesLabel(_ labels: [String: String]) -> Bool {
        values("label").allSatisfy { label in
            let kv = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard let value = labels[kv[0]] else { return false }
            return kv.count == 1 || value == kv[1]
        }
    }
}
