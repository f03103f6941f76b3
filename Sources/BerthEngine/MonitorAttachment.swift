#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Synchronization

/// A client attached to a running container through its monitor's attach socket (what `kubectl
/// attach` reaches through the CRI): output from now on, input to the container's stdin, terminal
/// resizes. The monitor's conversation is ``StreamFrame``s; `relay` blocks its thread until the
/// container exits or the client leaves.
public final class MonitorAttachment: @unchecked Sendable {
    public let tty: Bool
    public let stdin: Bool
    /// The container's stdinOnce: only then does the end of this client's input close the container's
    /// stdin (else it stays open for the next client, as containerd and docker keep it).
    public let closesStdinAtEOF: Bool
    private let connection: FileDescriptor

    private struct State {
        var input: [UInt8] = []
        var inputClosed = false
        var closeSent = false
        var clientGone = false
        var resizes: [(height: UInt16, width: UInt16)] = []
    }
    private let state = Mutex(State())
    private let wake: WakePipe?

    /// Connects to the monitor at `socket` and asks it for what follows only.
    public init(socket: String, tty: Bool, stdin: Bool, closesStdinAtEOF: Bool) throws(SystemCallError) {
        self.tty = tty
        self.stdin = stdin
        self.closesStdinAtEOF = closesStdinAtEOF
        connection = try UnixSocket.connect(socket)
        try connection.send(StreamFrame(.ready).encoded)
        wake = WakePipe()
    }

    public func input(_ bytes: [UInt8]) {
        guard stdin, !bytes.isEmpty else { return }
        state.withLock { $0.input += bytes }
        wake?.poke()
    }

    /// The client's input ended: the container's stdin closes (as the CRI's attach does with StdinOnce).
    public func closeInput() {
        state.withLock { $0.inputClosed = true }
        wake?.poke()
    }

    public func clientGone() {
        state.withLock { $0.clientGone = true }
        wake?.poke()
    }

    public func resize(height: UInt16, width: UInt16) {
        guard tty else { return }
        state.withLock { $0.resizes.append((height, width)) }
        wake?.poke()
    }

    /// Relays until the container exits, the monitor goes, or the client leaves: `output` gets each
    /// stdout or stderr payload and returns false once the client is gone.
    public func relay(output: (StreamFrame.Kind, [UInt8]) -> Bool) {
        defer { connection.close() }
        var decoder = StreamFrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0)]
            if let wake { fds.append(pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds.count > 1 && fds[1].revents != 0 {
                wake?.drain()
                let (input, close, gone, resizes) = state.withLock { s in
                    defer {
                        s.input = []
                        s.resizes = []
                    }
                    let close = s.inputClosed && !s.closeSent
                    if close { s.closeSent = true }
                    return (s.input, close, s.clientGone, s.resizes)
                }
                for size in resizes {
                    try? connection.send(StreamFrame.resize(rows: size.height, columns: size.width).encoded)
                }
                var offset = 0
                while offset < input.count {
                    let end = min(input.count, offset + StreamFrame.maximumPayload)
                    try? connection.send(StreamFrame(.stdin, Array(input[offset..<end])).encoded)
                    offset = end
                }
                // The input, then its end, reach the container before a leaving client's connection closes.
                if close && stdin && closesStdinAtEOF { try? connection.send(StreamFrame(.closeStdin).encoded) }
                if gone { return }
            }
            guard fds[0].revents != 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(connection.rawValue, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            decoder.append(buffer[0..<n])
            while true {
                let frame: StreamFrame?
                do { frame = try decoder.next() } catch { return }
                guard let frame else { break }
                switch frame.kind {
                case .stdout, .stderr:
                    if !output(frame.kind, frame.payload) { return }
                case .exit: return
                default: break
                }
            }
        }
    }
}
