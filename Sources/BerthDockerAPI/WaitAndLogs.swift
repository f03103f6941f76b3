#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS

/// `POST /containers/{id}/wait` and `GET /containers/{id}/logs`: the two endpoints that stream for as
/// long as a container runs.
extension DockerAPI {
    struct WaitResponse: Encodable {
        struct WaitError: Encodable { var Message: String }
        var StatusCode: Int32
        var Error: WaitError?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(StatusCode, forKey: .StatusCode)
            // `"Error": null` as dockerd writes it when there was none.
            try container.encode(Error, forKey: .Error)
        }
        enum Keys: String, CodingKey { case StatusCode, Error }
    }

    enum WaitCondition: String { case notRunning = "not-running", nextExit = "next-exit", removed }

    /// The headers go out at once (clients start the container only after they have them); the body,
    /// `{"StatusCode":N,"Error":null}`, when the condition is met.
    func waitContainer(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let text = request.value("condition").flatMap { $0.isEmpty ? nil : $0 } ?? "not-running"
        guard let condition = WaitCondition(rawValue: text) else {
            throw DockerAPIError.badRequest("invalid condition: \"\(text)\"")
        }
        let first = try engine.lookup(reference)
        // Subscribed before the headers go out: a start made as soon as the client has them is seen.
        let subscription = hub.subscribe()
        response.begin(contentType: "application/json")
        guard let status = waitFor(condition, first, subscription: subscription, cancel: response.cancellation) else {
            return response.finish()
        }
        var body = JSONBody.encode(WaitResponse(StatusCode: status))
        body.append(10)
        try? response.write(body)
        response.finish()
    }

    /// Blocks until `condition` holds for the container; its exit status, or nil if the client left.
    func waitFor(
        _ condition: WaitCondition, _ first: ContainerRecord, subscription: StateHub.Subscription, cancel: Cancellation
    ) -> Int32? {
        let id = first.id
        let startedAt = first.state.startedAt
        var lastStatus: Int32? = first.state.startedAt.isEmpty ? nil : first.state.exitCode
        var sawExit = false
        while !cancel.isCancelled {
            subscription.drain()
            guard let record = try? engine.lookup(id) else {
                // Removed: the status of its last run (an attachment or a watch saw it).
                return hub.lastExit(id) ?? lastStatus ?? 0
            }
            if record.state.running {
                switch engine.awaitExit(of: record, cancel: cancel.descriptor) {
                case .cancelled: return nil
                case .exited(let status):
                    lastStatus = status
                    sawExit = true
                }
                if condition != .removed { return lastStatus }
                continue
            }
            switch condition {
            case .notRunning:
                return record.state.exitCode
            case .nextExit:
                // It ran and ended between two looks (the start and the exit both since the wait began).
                if sawExit || (record.state.startedAt != startedAt && !record.state.startedAt.isEmpty) {
                    return record.state.exitCode
                }
            case .removed:
                if !record.state.startedAt.isEmpty { lastStatus = record.state.exitCode }
            }
            // Not started yet, or waiting for its removal: until the daemon changes something, or a
            // second passes (a `berth` CLI acting beside the daemon tells no one).
            var fds = [
                pollfd(fd: subscription.descriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: cancel.descriptor, events: Int16(POLLIN), revents: 0),
            ]
            _ = poll(&fds, 2, 1000)
        }
        return nil
    }

    /// The log, as docker's: multiplexed frames for a container without a terminal, the raw bytes for
    /// one with; `follow` streams until the container stops.
    func logs(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        var options = LogReader.Options()
        options.stdout = request.flag("stdout")
        options.stderr = request.flag("stderr")
        guard options.stdout || options.stderr else {
            throw DockerAPIError.badRequest("Bad parameters: you must choose at least one stream")
        }
        options.follow = request.flag("follow")
        // A client that goes away ends a follow (it would otherwise last as long as the container).
        options.cancel = response.cancellation.descriptor
        if let tail = request.value("tail"), !tail.isEmpty, tail != "all" {
            guard let n = Int(tail) else { throw DockerAPIError.badRequest("invalid value for tail: \(tail)") }
            if n >= 0 { options.tail = n }
        }
        options.since = try Self.time(request.value("since"), name: "since")
        options.until = try Self.time(request.value("until"), name: "until")
        let timestamps = request.flag("timestamps")
        let tty = record.configuration.tty
        // Fails before any output when the driver cannot be read back (a 4xx, not a broken stream).
        if record.configuration.logDriver == "none" {
            throw DockerAPIError.notImplemented("configured logging driver does not support reading")
        }
        response.begin(
            contentType: tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream")
        var pending: [UInt8] = []
        var failed = false
        let follow = options.follow
        func flush() {
            guard !pending.isEmpty, !failed else { return }
            do { try response.write(pending) } catch { failed = true }
            pending.removeAll(keepingCapacity: true)
        }
        do {
            try LogReader(engine: engine).read(record.id, options: options) { entry in
                guard !failed else { return }
                var bytes = entry.bytes
                if timestamps { bytes = Array((entry.time + " ").utf8) + bytes }
                if tty {
                    pending += bytes
                } else {
                    var offset = 0
                    repeat {
                        let end = min(bytes.count, offset + StreamFrame.maximumPayload)
                        StreamFrame.append(
                            entry.stream == "stderr" ? .stderr : .stdout, bytes[offset..<end], to: &pending)
                        offset = end
                    } while offset < bytes.count
                }
                // Followed entries go out as they come; the past in 256 KiB writes.
                if follow || pending.count >= 1 << 18 { flush() }
            }
        } catch {
            flush()
            logger.notice("logs of \(record.shortID): \(error)")
        }
        flush()
        response.finish()
    }

    /// docker's `since`/`until`: Unix seconds with an optional fraction; 0 or empty means unset.
    static func time(_ text: String?, name: String) throws(DockerAPIError) -> Double? {
        guard let text, !text.isEmpty else { return nil }
        guard let seconds = Double(text) else { throw .badRequest("invalid value for \(name): \(text)") }
        return seconds == 0 ? nil : seconds
    }
}
