#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS

/// The smaller container endpoints: pause, unpause, rename, resize, top, changes, export and prune.
extension DockerAPI {
    func pauseContainer(_ reference: String, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        if record.state.status == .paused { throw DockerAPIError.conflict("Container \(record.id) is already paused") }
        try engine.pause(record.id)
        hub.notify()
        response.send(.noContent)
    }

    func unpauseContainer(_ reference: String, _ response: ResponseWriter) throws {
        try engine.unpause(try engine.lookup(reference).id)
        hub.notify()
        response.send(.noContent)
    }

    func renameContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        var name = request.value("name") ?? ""
        if name.hasPrefix("/") { name = String(name.dropFirst()) }
        guard !name.isEmpty else { throw DockerAPIError.badRequest("Neither old nor new names may be empty") }
        let record = try engine.lookup(reference)
        if record.name == name {
            throw DockerAPIError.badRequest("Renaming a container with the same name as its current name")
        }
        try engine.rename(record.id, to: name)
        hub.notify()
        response.send(.noContent)
    }

    /// The terminal's size goes to the monitor, which holds the container's terminal, as a resize frame.
    func resizeContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let (height, width) = try Self.terminalSize(request)
        let record = try engine.lookup(reference)
        guard record.state.running else { throw DockerAPIError.conflict("Container \(record.id) is not running") }
        if record.configuration.tty {
            let connection = try UnixSocket.connect(engine.layout.attachSocket(record.id))
            try connection.send(StreamFrame.resize(rows: height, columns: width).encoded)
            connection.close()
        }
        response.send(.ok)
    }

    struct TopResponse: Encodable {
        var Titles: [String]
        var Processes: [[String]]
    }

    /// As dockerd: the host's `ps` with the client's arguments (default `-ef`), its rows kept when their
    /// PID column names one of the container's processes.
    func top(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        guard record.state.running else { throw DockerAPIError.conflict("Container \(record.id) is not running") }
        let pids = Set(try engine.processes(record.id))
        let arguments = (request.value("ps_args").flatMap { $0.isEmpty ? nil : $0 } ?? "-ef").split(separator: " ").map(
            String.init)
        guard let ps = ChildProcess.lookup("ps", path: "/usr/bin:/bin") else {
            throw DockerAPIError(.internalServerError, "no ps on the host")
        }
        let output = try ChildProcess.run(ps, arguments: ["ps"] + arguments, environment: ["PATH=/usr/bin:/bin"])
        guard output.status.succeeded else {
            throw DockerAPIError(.internalServerError, "ps: \(output.stderrText.trimmingSpaces)")
        }
        response.json(try Self.parsePS(output.stdoutText, pids: pids))
    }

    static func parsePS(_ text: String, pids: Set<Int32>) throws(DockerAPIError) -> TopResponse {
        let lines = text.split(separator: "\n")
        guard let header = lines.first else { return TopResponse(Titles: [], Processes: []) }
        let titles = header.split(separator: " ").map(String.init)
        guard let pidColumn = titles.firstIndex(of: "PID") else {
            throw DockerAPIError(.internalServerError, "Couldn't find PID field in ps output")
        }
        var processes: [[String]] = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count >= titles.count, let pid = Int32(fields[pidColumn]), pids.contains(pid) else { continue }
            // The last column (the command) takes the rest of the line, spaces and all.
            processes.append(
                Array(fields[..<(titles.count - 1)]) + [fields[(titles.count - 1)...].joined(separator: " ")])
        }
        return TopResponse(Titles: titles, Processes: processes)
    }

    struct ChangeEntry: Encodable {
        var Path: String
        var Kind: Int
    }

    func changes(_ reference: String, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        guard let changes = try engine.changes(record.id) else {
            throw DockerAPIError.notImplemented("changes are not available for a container on a copy snapshot")
        }
        response.json(changes.map { ChangeEntry(Path: $0.path, Kind: $0.kind.rawValue) })
    }

    /// The container's root filesystem as a tar stream (the overlay as it looks now, without mounts).
    func export(_ reference: String, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        try engine.images.mountRootfs(containerID: record.id)
        guard let rootfs = engine.images.rootfsPath(containerID: record.id) else {
            throw DockerAPIError(.internalServerError, "container \(record.shortID) has no root filesystem")
        }
        // Entries named as docker's (`bin/`, not `./bin/`).
        let names = (try? FileSystem.listDirectory(rootfs).sorted()) ?? []
        response.begin(contentType: "application/x-tar")
        try streamOutput(of: "export of \(record.shortID)", to: response) { fd throws(EngineError) in
            do {
                let devnull = try FileDescriptor.open("/dev/null", O_WRONLY)
                let pid = try ChildProcess.spawn(
                    "/bin/tar",
                    arguments: ["tar", "--numeric-owner", "-C", rootfs, "-cf", "-"] + (names.isEmpty ? ["."] : names),
                    environment: ["PATH=/usr/bin:/bin"], fileDescriptors: [1: fd, 2: devnull.rawValue])
                let status = try ChildProcess.wait(pid)
                guard status.succeeded else { throw EngineError.other("tar: \(status)") }
            } catch let error as EngineError { throw error } catch { throw .other("tar: \(error)") }
        }
        response.finish()
    }

    struct PruneResponse: Encodable {
        var ContainersDeleted: [String]?
        var SpaceReclaimed: Int64

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            // `null` when nothing went, as dockerd writes it.
            try c.encode(ContainersDeleted, forKey: .ContainersDeleted)
            try c.encode(SpaceReclaimed, forKey: .SpaceReclaimed)
        }
        enum Keys: String, CodingKey { case ContainersDeleted, SpaceReclaimed }
    }

    /// Removes every stopped container the filters (`until`, `label`, `label!`) select.
    func pruneContainers(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["until", "label", "label!"])
        let until = try filters.values("until").map { text throws(DockerAPIError) -> Double in
            guard let time = Self.pointInTime(text) else { throw .badRequest("invalid filter 'until=\(text)'") }
            return time
        }.min()
        var deleted: [String] = []
        var reclaimed: Int64 = 0
        for record in engine.list() where !record.state.running {
            let labels = record.configuration.labels.merging(record.imageConfig?.Labels ?? [:]) { a, _ in a }
            guard filters.matchesLabel(labels) else { continue }
            if !filters.values("label!").isEmpty,
                Filters(entries: ["label": filters.values("label!")]).matchesAnyLabel(labels)
            {
                continue
            }
            if let until, let created = Timestamp.parse(record.created), Double(created.seconds) >= until { continue }
            let size = engine.images.writableLayerSize(containerID: record.id)
            do {
                try engine.remove(record.id, force: false)
            } catch {
                logger.notice("prune: \(record.shortID): \(error)")
                continue
            }
            execs.forget(containerID: record.id)
            deleted.append(record.id)
            reclaimed += size
        }
        if !deleted.isEmpty { hub.notify() }
        response.json(PruneResponse(ContainersDeleted: deleted.isEmpty ? nil : deleted, SpaceReclaimed: reclaimed))
    }

    /// docker's time filters: Unix seconds (with a fraction), RFC 3339, or a duration before now (`10m`, `1h30m`).
    static func pointInTime(_ text: String) -> Double? {
        if let seconds = Double(text) { return seconds }
        if let parsed = Timestamp.parse(text) { return Double(parsed.seconds) + Double(parsed.nanoseconds) / 1e9 }
        var total = 0.0
        var number = ""
        for c in text {
            if c.isNumber || c == "." { number.append(c); continue }
            guard let value = Double(number) else { return nil }
            switch c {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
            number = ""
        }
        guard number.isEmpty, total > 0 else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) - total
    }
}

extension Filters {
    /// `label!=key` or `label!=key=value`: true when any of them holds (the container is then left out).
    func matchesAnyLabel(_ labels: [String: String]) -> Bool {
        values("label").contains { label in
            let kv = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard let value = labels[kv[0]] else { return false }
            return kv.count == 1 || value == kv[1]
        }
    }
}
