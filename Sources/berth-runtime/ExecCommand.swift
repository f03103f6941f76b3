#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthRuntime
import FoundationEssentials

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run another process in a running container.")
    @Option(name: [.customShort("p"), .long], help: "A process.json (the config.json `process` object).") var process:
        String?
    @Flag(name: [.customShort("t"), .long], help: "Allocate a pseudo-TTY.") var tty = false
    @Flag(name: [.customShort("d"), .long], help: "Do not wait for the process.") var detach = false
    @Option(name: .customLong("pid-file")) var pidFile: String?
    @Option(name: .customLong("console-socket")) var consoleSocket: String?
    @Option(name: [.customShort("e"), .long], help: "Set an environment variable (KEY=VALUE).") var env: [String] = []
    @Option(name: .long, help: "Working directory in the container.") var cwd: String?
    @Option(name: [.customShort("u"), .long], help: "uid[:gid]") var user: String?
    @Option(name: [.customShort("g"), .customLong("additional-gids")]) var additionalGids: [UInt32] = []
    @Option(name: [.customShort("c"), .customLong("cap")], help: "Add a capability.") var capabilities: [String] = []
    @Flag(name: .customLong("no-new-privs")) var noNewPrivileges = false
    @Option(name: .customLong("apparmor")) var apparmor: String?
    @Option(name: .customLong("process-label")) var processLabel: String?
    @Option(name: .customLong("preserve-fds")) var preserveFds = 0
    @Argument var id: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() {
        var status: Int32 = 0
        runOrExit { () throws(RuntimeError) in
            let runtime = runtime()
            var options = ExecOptions(id: id, process: try buildProcess(runtime))
            options.detach = detach
            options.pidFile = pidFile
            options.consoleSocket = consoleSocket
            options.preserveFds = preserveFds
            status = try runtime.exec(options)
        }
        Glibc.exit(status)
    }

    /// The process to run: --process as given, or the container's own process with the flags applied.
    func buildProcess(_ runtime: Runtime) throws(RuntimeError) -> Spec.Process {
        if let process {
            let bytes: [UInt8]
            do {
                bytes = try Array(FileSystemText.read(process))
            } catch {
                throw .invalidConfig(field: "--process", reason: "cannot read \(process): \(error)")
            }
            do { return try JSONDecoder().decode(Spec.Process.self, from: Data(bytes)) } catch {
                throw .invalidConfig(field: "--process", reason: "\(process) is not a valid process JSON: \(error)")
            }
        }
        guard !command.isEmpty else {
            throw .invalidConfig(field: "exec", reason: "no command given and no --process file")
        }
        let record = try runtime.store.load(id)
        var result = record.config.process ?? Spec.Process(args: command)
        result.args = command
        result.terminal = tty
        result.consoleSize = nil
        result.env = (result.env ?? []) + env
        if let cwd { result.cwd = cwd }
        if let user {
            let parts = user.split(separator: ":")
            guard let uid = parts.first.flatMap({ UInt32($0) }) else {
                throw .invalidConfig(field: "--user", reason: "expected uid[:gid], got \"\(user)\"")
            }
            result.user.uid = uid
            if parts.count > 1 {
                guard let gid = UInt32(parts[1]) else {
                    throw .invalidConfig(field: "--user", reason: "invalid gid in \"\(user)\"")
                }
                result.user.gid = gid
            }
        }
        if !additionalGids.isEmpty { result.user.additionalGids = additionalGids }
        if !capabilities.isEmpty {
            var caps = result.capabilities ?? Spec.Capabilities()
            caps.bounding = (caps.bounding ?? []) + capabilities
            caps.effective = (caps.effective ?? []) + capabilities
            caps.permitted = (caps.permitted ?? []) + capabilities
            result.capabilities = caps
        }
        if noNewPrivileges { result.noNewPrivileges = true }
        if let apparmor { result.apparmorProfile = apparmor }
        if let processLabel { result.selinuxLabel = processLabel }
        return result
    }
}

enum FileSystemText {
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RuntimeError.other(String(cString: strerror(errno))) }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 { if errno == EINTR { continue }; throw RuntimeError.other(String(cString: strerror(errno))) }
            if n == 0 { return result }
            result.append(contentsOf: buffer[0..<n])
        }
    }
}
