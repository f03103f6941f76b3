import BerthEngine
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// The CLI's end of an attachment to a container's monitor (docker run without -d, docker attach):
/// output frames to this process's stdout and stderr, this process's stdin to the container, terminal
/// size changes and forwarded signals — until the monitor reports the exit.
struct AttachRelay {
    let connection: FileDescriptor
    /// Send our stdin (`-i`).
    let forwardInput: Bool
    /// The container has a terminal (`-t`): our terminal goes raw and its size follows ours.
    let terminal: Bool
    /// ctrl-p ctrl-q (docker's default detach keys) ends the attachment, leaving the container running.
    let detachKeys: [UInt8] = [16, 17]
    /// Called with a signal this process received (docker's --sig-proxy).
    let forwardSignal: (Int32) -> Void
    /// What arrived after the exit frame stays here for ``awaitRelease(seconds:)``.
    private let frames = FrameBuffer()

    private final class FrameBuffer { var decoder = StreamFrameDecoder() }

    init(connection: FileDescriptor, forwardInput: Bool, terminal: Bool, forwardSignal: @escaping (Int32) -> Void) {
        self.connection = connection
        self.forwardInput = forwardInput
        self.terminal = terminal
        self.forwardSignal = forwardSignal
    }

    enum Outcome { case exited(Int32), detached, disconnected }

    /// Relays until the end and returns the CLI's exit status: the container's (asked of the engine if
    /// the monitor went away without saying), or 0 when the user detached.
    func status(of id: String, engine: Engine) -> (status: Int32, detached: Bool) {
        switch run() {
        case .exited(let code): return (code, false)
        case .detached: return (0, true)
        case .disconnected: return ((try? engine.wait(id)) ?? 125, false)
        }
    }

    func run() -> Outcome {
        let signals = SignalPipe.install([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])
        let rawTerminal = terminal && forwardInput && isatty(0) == 1 ? RawTerminal(fd: 0) : nil
        defer { rawTerminal?.restore() }
        if terminal { sendSize() }
        var inputOpen = forwardInput
        var matched = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [
                pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
            ]
            if inputOpen { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                return .disconnected
            }
            if fds[1].revents != 0 {
                var signal: UInt8 = 0
                while read(signals, &signal, 1) == 1 {
                    if Int32(signal) == SIGWINCH {
                        if terminal { sendSize() }
                    } else if !terminal {
                        forwardSignal(Int32(signal))
                    }
                }
            }
            if fds.count > 2, fds[2].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    inputOpen = false
                    try? connection.send(StreamFrame(.closeStdin).encoded)
                } else {
                    var bytes = Array(buffer[0..<n])
                    if rawTerminal != nil {
                        // The detach sequence is swallowed; a partial match is sent on once it breaks.
                        var out: [UInt8] = []
                        for byte in bytes {
                            if byte == detachKeys[matched] {
                                matched += 1
                                if matched == detachKeys.count { return .detached }
                            } else {
                                out += detachKeys[0..<matched]
                                matched = 0
                                if byte == detachKeys[0] { matched = 1 } else { out.append(byte) }
                            }
                        }
                        bytes = out
                    }
                    if !bytes.isEmpty { try? connection.send(StreamFrame(.stdin, bytes).encoded) }
                }
            }
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(connection.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return .disconnected }
                frames.decoder.append(buffer[0..<n])
                while let frame = try? frames.decoder.next() {
                    switch frame.kind {
                    case .stdout: writeAll(1, frame.payload)
                    case .stderr: writeAll(2, frame.payload)
                    case .exit: return .exited(frame.exitStatus ?? 255)
                    default: break
                    }
                }
            }
        }
    }

    /// After the exit: waits (at most `seconds`) for the monitor's `released` frame, which says the
    /// runtime has deleted the container, or for the monitor to go. `run --rm` removes the container
    /// meanwhile and returns only when nothing of it is left.
    func awaitRelease(seconds: Int) {
        let deadline = Timestamp.monotonic() + Double(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            while let frame = try? frames.decoder.next() {
                if frame.kind == .released { return }
            }
            let left = deadline - Timestamp.monotonic()
            guard left > 0 else { return }
            var entry = pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(left * 1000))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }
            let n = buffer.withUnsafeMutableBytes { read(connection.rawValue, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            frames.decoder.append(buffer[0..<n])
        }
    }

    func sendSize() {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0 || ioctl(0, UInt(TIOCGWINSZ), &size) == 0 {
            try? connection.send(StreamFrame.resize(rows: size.ws_row, columns: size.ws_col).encoded)
        }
    }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

/// Signals delivered as bytes on a pipe, so a poll loop can wait for them with its descriptors.
enum SignalPipe {
    nonisolated(unsafe) static var writeEnd: Int32 = -1
    nonisolated(unsafe) static var readEnd: Int32 = -1

    static func install(_ signals: [Int32]) -> Int32 {
        if readEnd < 0 {
            guard let pipe = try? Pipe() else { return -1 }
            readEnd = pipe.reading.take()
            writeEnd = pipe.writing.take()
            _ = fcntl(readEnd, F_SETFL, O_NONBLOCK)
            _ = fcntl(writeEnd, F_SETFL, O_NONBLOCK)
        }
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalPipe.writeEnd, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
        return readEnd
    }
}

/// This terminal in raw mode for the length of an attachment.
final class RawTerminal {
    let fd: Int32
    var saved = termios()
    init?(fd: Int32) {
        self.fd = fd
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        tcsetattr(fd, TCSANOW, &raw)
    }
    func restore() { tcsetattr(fd, TCSANOW, &saved) }
}
