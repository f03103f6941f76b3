#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials

/// One event in docker's shape (`docker events --format json`, the Engine API's /events).
public struct EngineEvent: Codable, Sendable {
    public var status: String?
    public var id: String?
    public var from: String?
    public var `Type`: String
    public var Action: String
    public var Actor: ActorSection
    public var scope = "local"
    public var time: Int
    public var timeNano: Int

    public struct ActorSection: Codable, Sendable {
        public var ID: String
        public var Attributes: [String: String]
    }
}

/// The engine's event log: JSON lines appended to `<root>/events.jsonl` by whichever process acted (one
/// `write` per event with O_APPEND, so writers never interleave), read back and followed by `events`.
public struct EventLog: Sendable {
    let path: String
    /// The log is rotated past this size (the previous file kept), as docker keeps a bounded history.
    static let maximumSize = 4 << 20

    public init(layout: EngineLayout) { path = layout.root + "/events.jsonl" }

    /// Records a container event with its image and name (plus `extra` attributes, such as exitCode).
    public func container(_ action: String, _ record: ContainerRecord, _ extra: [String: String] = [:]) {
        var attributes = record.configuration.labels.merging(record.imageConfig?.Labels ?? [:]) { a, _ in a }
        attributes["image"] = record.imageReference
        attributes["name"] = record.name
        for (k, v) in extra { attributes[k] = v }
        append(type: "container", action: action, id: record.id, attributes: attributes, from: record.imageReference)
    }

    /// Records an event of any type (network, volume, image).
    public func append(type: String, action: String, id: String, attributes: [String: String], from: String? = nil) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nano = Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
        let event = EngineEvent(
            status: type == "container" ? action : nil, id: type == "container" ? id : nil,
            from: type == "container" ? from : nil, Type: type, Action: action,
            Actor: .init(ID: id, Attributes: attributes), time: Int(now.tv_sec), timeNano: nano)
        var line = RecordFile.encode(event)
        line.append(10)
        var info = stat()
        if stat(path, &info) == 0, Int(info.st_size) > EventLog.maximumSize { rename(path, path + ".1") }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    public struct Filter: Sendable {
        /// docker's filters: type, event (action), container, image, network, volume, label.
        public var values: [String: [String]] = [:]
        public init() {}

        func matches(_ e: EngineEvent) -> Bool {
            for (key, wanted) in values {
                let ok: Bool
                switch key {
                case "type": ok = wanted.contains(e.Type)
                case "event": ok = wanted.contains(e.Action) || wanted.contains { e.Action.hasPrefix($0 + ":") }
                case "container":
                    ok =
                        e.Type == "container"
                        && wanted.contains { $0 == e.Actor.Attributes["name"] || e.Actor.ID.hasPrefix($0) }
                case "image": ok = wanted.contains { $0 == e.Actor.Attributes["image"] || $0 == e.from }
                case "network":
                    ok =
                        e.Type == "network"
                        && wanted.contains { $0 == e.Actor.Attributes["name"] || e.Actor.ID.hasPrefix($0) }
                case "volume": ok = e.Type == "volume" && wanted.contains(e.Actor.ID)
                case "label":
                    ok = wanted.contains { label in
                        let kv = label.split(separator: "=", maxSplits: 1).map(String.init)
                        return e.Actor.Attributes[kv[0]].map { kv.count == 1 || $0 == kv[1] } ?? false
                    }
                default: ok = false
                }
                if !ok { return false }
            }
            return true
        }
    }

    /// Events between `since` and `until` (seconds since 1970), then — without `until` — every new one
    /// as it is written, until `shouldStop` says so.
    public func read(
        since: Double?, until: Double?, filter: Filter, emit: (EngineEvent) -> Void,
        shouldStop: () -> Bool = { false }
    ) {
        let decoder = JSONDecoder()
        func parse(_ bytes: [UInt8]) -> (events: [EngineEvent], rest: [UInt8]) {
            var events: [EngineEvent] = []
            var start = 0
            while let newline = bytes[start...].firstIndex(of: 10) {
                if let e = try? decoder.decode(EngineEvent.self, from: Data(bytes[start..<newline])) {
                    events.append(e)
                }
                start = newline + 1
            }
            return (events, Array(bytes[start...]))
        }
        func wanted(_ e: EngineEvent) -> Bool {
            let t = Double(e.timeNano) / 1e9
            if let since, t < since { return false }
            if let until, t > until { return false }
            return filter.matches(e)
        }
        // Past events: only when asked for (docker shows none without --since).
        if since != nil {
            if let old = try? FileSystem.readFile(path + ".1") { parse(old).events.filter(wanted).forEach(emit) }
        }
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        var file = FileDescriptor(owning: fd)
        var pending: [UInt8] = []
        let existing = (try? file.readAll()) ?? []
        if since != nil { parse(existing).events.filter(wanted).forEach(emit) }
        guard until == nil || until! > Double(time(nil)) else { return }
        let inotify = FileDescriptor(owning: inotify_init1(Int32(IN_CLOEXEC)))
        var watch = inotify_add_watch(inotify.rawValue, path, UInt32(IN_MODIFY))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !shouldStop() {
            if let until, Double(time(nil)) > until { return }
            var entry = pollfd(fd: inotify.rawValue, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 500) > 0 {
                _ = buffer.withUnsafeMutableBytes { Glibc.read(inotify.rawValue, $0.baseAddress, $0.count) }
            }
            while let chunk = try? file.read(upTo: 65536), !chunk.isEmpty {
                pending += chunk
                let (events, rest) = parse(pending)
                pending = rest
                events.filter(wanted).forEach(emit)
            }
            // Rotated (renamed to .1 past its size): what was left is read above; follow the new file.
            var current = stat()
            var opened = stat()
            if stat(path, &current) == 0, fstat(file.rawValue, &opened) == 0, current.st_ino != opened.st_ino {
                let fresh = open(path, O_RDONLY | O_CLOEXEC)
                guard fresh >= 0 else { continue }
                file = FileDescriptor(owning: fresh)
                pending = []
                inotify_rm_watch(inotify.rawValue, watch)
                watch = inotify_add_watch(inotify.rawValue, path, UInt32(IN_MODIFY))
            }
        }
    }
}
