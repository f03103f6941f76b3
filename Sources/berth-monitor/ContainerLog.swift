#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Where a container's output goes: docker's json-file format, the Kubernetes CRI format, or nowhere.
///
/// Lines are written whole: output is split at newlines, and a partial line is held (up to 16 KiB, as
/// docker does) until its newline arrives, the buffer fills, or the stream ends.
final class ContainerLog {
    enum Format: String { case jsonFile = "json-file", cri = "cri", none = "none" }

    let format: Format
    let path: String
    /// Rotate when the file would exceed this many bytes (0: never).
    let maximumSize: Int
    /// Files kept including the current one (docker's `max-file`, default 1: the file is truncated).
    let maximumFiles: Int
    private var fd: Int32 = -1
    private var size = 0
    private var partial: [String: [UInt8]] = [:]
    static let partialLimit = 16 * 1024

    init(format: Format, path: String, maximumSize: Int, maximumFiles: Int) {
        self.format = format
        self.path = path
        self.maximumSize = maximumSize
        self.maximumFiles = max(1, maximumFiles)
        if format != .none { open() }
    }

    private func open() {
        fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        var info = stat()
        size = fd >= 0 && fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Closes the file and opens its path again (a new file when it was renamed away); the error, if
    /// the path cannot be opened.
    func reopen() -> String? {
        guard format != .none else { return nil }
        if fd >= 0 { Glibc.close(fd) }
        open()
        return fd >= 0 ? nil : "opening \(path): \(String(cString: strerror(errno)))"
    }

    /// Records `bytes` the container wrote on `stream` (`stdout` or `stderr`).
    func append(_ bytes: ArraySlice<UInt8>, stream: String) {
        guard format != .none else { return }
        var pending = partial[stream, default: []]
        pending.append(contentsOf: bytes)
        var start = 0
        while let newline = pending[start...].firstIndex(of: 10) {
            emit(Array(pending[start...newline]), stream: stream, complete: true)
            start = newline + 1
        }
        pending.removeFirst(start)
        while pending.count >= ContainerLog.partialLimit {
            emit(Array(pending[0..<ContainerLog.partialLimit]), stream: stream, complete: false)
            pending.removeFirst(ContainerLog.partialLimit)
        }
        partial[stream] = pending
    }

    /// Writes what is left of partial lines (the stream ended).
    func flush() {
        for (stream, pending) in partial where !pending.isEmpty {
            emit(pending, stream: stream, complete: false)
        }
        partial.removeAll()
    }

    private func emit(_ line: [UInt8], stream: String, complete: Bool) {
        let time = Timestamp.now()
        var entry: [UInt8] = []
        switch format {
        case .jsonFile:
            // {"log":"…","stream":"stdout","time":"2026-12-03T11:44:25.123456789Z"}, one per line.
            entry.reserveCapacity(line.count + 64)
            entry.append(contentsOf: Array(#"{"log":""#.utf8))
            ContainerLog.appendEscaped(line, to: &entry)
            entry.append(contentsOf: Array("\",\"stream\":\"\(stream)\",\"time\":\"\(time)\"}\n".utf8))
        case .cri:
            // 2016-10-06T00:17:09.669794202Z stdout F text — P marks a partial line (the kubelet's format).
            entry.append(contentsOf: Array("\(time) \(stream) \(complete ? "F" : "P") ".utf8))
            entry.append(contentsOf: complete && line.last == 10 ? line.dropLast() : line[...])
            entry.append(10)
        case .none:
            return
        }
        if maximumSize > 0 && size > 0 && size + entry.count > maximumSize { rotate() }
        guard fd >= 0 else { return }
        var offset = 0
        while offset < entry.count {
            let n = entry[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            // A full disk loses this entry, not the container: the monitor keeps draining its output.
            if n <= 0 { return }
            offset += n
        }
        size += entry.count
    }

    /// log → log.1 → … → log.(maxFiles-1); the oldest falls off. With one file the log is truncated.
    private func rotate() {
        Glibc.close(fd)
        if maximumFiles > 1 {
            for index in stride(from: maximumFiles - 1, to: 0, by: -1) {
                let from = index == 1 ? path : "\(path).\(index - 1)"
                rename(from, "\(path).\(index)")
            }
        } else {
            truncate(path, 0)
        }
        open()
    }

    /// JSON string escaping as Go's encoding/json does it (docker's logs read back byte for byte):
    /// quotes, backslash and control characters escaped; <, > and & as \u003c, \u003e, \u0026; invalid
    /// UTF-8 replaced by U+FFFD.
    static func appendEscaped(_ bytes: [UInt8], to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        let text = String(decoding: bytes, as: UTF8.self)
        for byte in text.utf8 {
            switch byte {
            case 0x22: out.append(0x5c); out.append(0x22)
            case 0x5c: out.append(0x5c); out.append(0x5c)
            case 0x0a: out.append(0x5c); out.append(0x6e)
            case 0x0d: out.append(0x5c); out.append(0x72)
            case 0x09: out.append(0x5c); out.append(0x74)
            case 0..<0x20, 0x3c, 0x3e, 0x26:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            default: out.append(byte)
            }
        }
    }
}
