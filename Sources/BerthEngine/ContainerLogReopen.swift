#if canImport(Glibc)
import Glibc
#endif
import BerthOS

extension Engine {
    /// Has the container's monitor close and reopen its log file: the kubelet rotates a CRI log by
    /// renaming it and then asks for this, so that new output goes to a new file at the old path.
    /// Waits (up to 10 s) for the monitor's answer.
    public func reopenLog(_ reference: String) throws(EngineError) {
        let record = try lookup(reference)
        guard record.state.running else {
            throw .conflict("container \(record.id) is not running")
        }
        let connection: FileDescriptor
        do {
            connection = try UnixSocket.connect(layout.attachSocket(record.id))
            // `ready` first: the monitor sends this client only what follows, not the container's past.
            try connection.send(StreamFrame(.ready).encoded + StreamFrame(.reopenLog).encoded)
        } catch { throw .system(error, context: "asking the monitor of \(record.shortID) to reopen its log") }
        defer { connection.close() }
        var decoder = StreamFrameDecoder()
        let deadline = Timestamp.monotonic() + 10
        while true {
            let left = deadline - Timestamp.monotonic()
            guard left > 0 else {
                throw .other("the monitor of \(record.shortID) did not answer the log reopen in 10 s")
            }
            var entry = pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, Int32(left * 1000) + 1) <= 0 { continue }
            let bytes: [UInt8]
            do { bytes = try connection.read(upTo: 65536) } catch {
                throw .system(error, context: "reading the answer of the monitor of \(record.shortID)")
            }
            guard !bytes.isEmpty else { throw .conflict("container \(record.id) is not running") }
            decoder.append(bytes)
            while let frame = try? decoder.next() {
                if frame.kind == .reopenLog {
                    if frame.payload.isEmpty { return }
                    throw .other(
                        "reopening the log of \(record.shortID): " + String(decoding: frame.payload, as: UTF8.self))
                }
            }
        }
    }
}
