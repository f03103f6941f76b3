import BerthJSON
import BerthOS
import FoundationEssentials

/// What the parent tells the container's init (or an exec'd process) over their socket pair.
struct InitRequest: Codable, Sendable {
    enum Mode: String, Codable, Sendable {
        /// `create`: wait on exec.fifo for `start`.
        case create
        /// `run`: wait for a start message from the parent on the socket.
        case run
        /// `exec`: join a running container; no rootfs setup.
        case exec
    }

    var mode: Mode
    var containerID: String
    var bundle: String
    var rootfs: String
    /// Exec; for create and run, nil: config.json's bytes follow in a frame of their own and the init
    /// decodes them itself (see LaunchEssentials).
    var spec: Spec?
    var process: Spec.Process?
    var noPivot: Bool
    var noNewKeyring: Bool
    var preserveFds: Int
    /// Inherited descriptor of a connection to --console-socket: the pty master is sent over it.
    var consoleFd: Int32?
    /// Inherited O_PATH descriptor of exec.fifo (create mode).
    var fifoFd: Int32?
    var createdAt: String
    /// Exec mode: inherited descriptor of the container's mount namespace, joined after exec.
    var mountNamespaceFd: Int32? = nil
    /// Create and run: after this request (and config.json), the parent sends the container's cgroup
    /// directories once they exist, then one byte once the init sits in them (InitProcess.CgroupGate).
    var awaitsCgroups = false
    /// Create and run: inherited O_PATH descriptor of the runtime's seccomp filter cache (SeccompCache).
    var seccompCacheFd: Int32? = nil
    /// cgroup v1: the init moves itself into the v1 directories it is sent (writing 0 to `tasks` moves the
    /// writing thread without cgroup_threadgroup_rwsem, so no RCU grace period is waited out; see Creator).
    var movesIntoCgroups = false
}

extension InitRequest {
    /// Read from a parsed tree without Codable (its per-type set-up costs the init a few tenths of a
    /// millisecond); the spec and process of exec go through ``JSONTreeDecoder``. Nil if a field is
    /// missing or of the wrong type.
    init?(tree: JSON) throws {
        guard case .object(let fields) = tree else { return nil }
        guard let modeName = fields["mode"].string, let mode = Mode(rawValue: modeName),
            let containerID = fields["containerID"].string,
            let bundle = fields["bundle"].string, let rootfs = fields["rootfs"].string,
            let createdAt = fields["createdAt"].string,
            let noPivot = fields["noPivot"].optionalBool, let noNewKeyring = fields["noNewKeyring"].optionalBool,
            let awaitsCgroups = fields["awaitsCgroups"].optionalBool,
            let preserveFds = fields["preserveFds"].integer(Int.self),
            let consoleFd = fields["consoleFd"].optionalInteger(Int32.self),
            let fifoFd = fields["fifoFd"].optionalInteger(Int32.self),
            let mountNamespaceFd = fields["mountNamespaceFd"].optionalInteger(Int32.self),
            let seccompCacheFd = fields["seccompCacheFd"].optionalInteger(Int32.self),
            let movesIntoCgroups = fields["movesIntoCgroups"].optionalBool
        else { return nil }
        var spec: Spec?
        var process: Spec.Process?
        if let value = fields["spec"], value != .null { spec = try JSONTreeDecoder.decode(Spec.self, from: value) }
        if let value = fields["process"], value != .null {
            process = try JSONTreeDecoder.decode(Spec.Process.self, from: value)
        }
        self.init(
            mode: mode, containerID: containerID, bundle: bundle, rootfs: rootfs, spec: spec, process: process,
            noPivot: noPivot ?? false, noNewKeyring: noNewKeyring ?? false, preserveFds: preserveFds,
            consoleFd: consoleFd,
            fifoFd: fifoFd, createdAt: createdAt, mountNamespaceFd: mountNamespaceFd,
            awaitsCgroups: awaitsCgroups ?? false,
            seccompCacheFd: seccompCacheFd, movesIntoCgroups: movesIntoCgroups ?? false)
    }
}

/// What the init reports back: a kind byte and, for failures, the message — no JSON, so neither side
/// pays for a JSON coder's start-up on the way to `created`.
struct InitMessage: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        /// Namespaces and mounts exist, before pivot_root: time for prestart/createRuntime hooks.
        case runtimeHooks = 1
        /// Everything is set up; the init waits for start.
        case created = 2
        case failed = 3
    }
    var kind: Kind
    var detail: String?
}

/// Length-prefixed frames over a stream socket: the request as JSON, config.json and cgroup directories
/// as bytes, the init's replies as a kind byte and text, single bytes for "go on".
enum Frames {
    /// A value as JSON (the runtime's request to the init).
    static func send<T: Encodable>(_ value: T, on fd: FileDescriptor) throws(RuntimeError) {
        let body: [UInt8]
        do { body = try JSONTreeEncoder.encode(value) } catch { throw .other("encoding message: \(error)") }
        try sendRaw(body, on: fd)
    }

    static func send(_ message: InitMessage, on fd: FileDescriptor) throws(RuntimeError) {
        try sendRaw([message.kind.rawValue] + Array((message.detail ?? "").utf8), on: fd)
    }

    /// Nil at end of stream (the other side exited).
    static func receive(_ type: InitMessage.Type, on fd: FileDescriptor) throws(RuntimeError) -> InitMessage? {
        guard let frame = try receiveRaw(on: fd) else { return nil }
        guard let first = frame.first, let kind = InitMessage.Kind(rawValue: first) else {
            throw .other("malformed message from init")
        }
        return InitMessage(
            kind: kind, detail: frame.count > 1 ? String(decoding: frame.dropFirst(), as: UTF8.self) : nil)
    }

    static func receive(_ type: InitRequest.Type, on fd: FileDescriptor) throws(RuntimeError) -> InitRequest? {
        guard let frame = try receiveRaw(on: fd) else { return nil }
        do {
            guard let request = try InitRequest(tree: try JSONParser.parse(frame)) else {
                throw RuntimeError.other("malformed request from the runtime")
            }
            return request
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw .other("decoding request: \(error)")
        }
    }

    /// Raw bytes in a frame.
    static func sendRaw(_ body: [UInt8], on fd: FileDescriptor) throws(RuntimeError) {
        var length = UInt32(body.count).littleEndian
        let header = withUnsafeBytes(of: &length) { Array($0) }
        try RuntimeError.wrap("sending to init") { () throws(SystemCallError) in try fd.send(header + body) }
    }

    /// Nil at end of stream.
    static func receiveRaw(on fd: FileDescriptor) throws(RuntimeError) -> [UInt8]? {
        let header = try RuntimeError.wrap("reading from init") { () throws(SystemCallError) in try fd.readExactly(4) }
        if header.isEmpty { return nil }
        guard header.count == 4 else { throw .other("truncated message header") }
        let length = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard length < 64 << 20 else { throw .other("oversized message") }
        let body = try RuntimeError.wrap("reading from init") { () throws(SystemCallError) in try fd.readExactly(length)
        }
        return body.count == length ? body : nil
    }

    /// A single byte, for "go on" signals.
    static func sendByte(on fd: FileDescriptor) throws(RuntimeError) {
        try RuntimeError.wrap("signalling init") { () throws(SystemCallError) in try fd.send([0x01]) }
    }

    static func receiveByte(on fd: FileDescriptor) throws(RuntimeError) -> Bool {
        let byte = try RuntimeError.wrap("waiting for parent") { () throws(SystemCallError) in try fd.read(upTo: 1) }
        return byte.count == 1
    }
}
