#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The container's first process, before it becomes the user's program.
///
/// `berth-runtime init` runs here after berth_spawn cloned it into the container's namespaces and
/// exec'd it from a sealed copy of the runtime binary. It is single-threaded Swift: it reads its
/// instructions from the parent, builds the rootfs, waits for `start`, drops privileges and execs.
public enum ContainerInit {
    /// Entry point for `berth-runtime init`; never returns.
    public static func main() -> Never {
        guard let fdText = getenv("_BERTH_INIT_FD"), let fdNumber = Int32(String(cString: fdText)) else {
            _ = "berth-runtime init: not started by berth-runtime\n".withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        unsetenv("_BERTH_INIT_FD")
        let socket = FileDescriptor(owning: fdNumber)
        try? socket.setCloseOnExec(true)
        do {
            guard let request = try Frames.receive(InitRequest.self, on: socket) else { exit(1) }
            let spec: Spec
            let process: Spec.Process
            if let given = request.spec, let givenProcess = request.process {
                spec = given
                process = givenProcess
            } else {
                // create and run: config.json's bytes follow, decoded and checked here while the runtime
                // does the same (it stops this init if they are invalid; nothing here acts on them before).
                guard let bytes = try Frames.receiveRaw(on: socket) else { exit(1) }
                spec = try SpecLoader.decode(bytes)
                try SpecValidator(spec: spec, bundle: request.bundle).validate()
                guard let configured = spec.process else {
                    throw RuntimeError.invalidConfig(field: "process", reason: "required to create a container")
                }
                process = configured
            }
            try InitProcess(request: request, spec: spec, process: process, socket: socket).run()
        } catch {
            try? Frames.send(InitMessage(kind: .failed, detail: "\(error)"), on: socket)
            exit(1)
        }
    }
}

struct InitProcess {
    let request: InitRequest
    let spec: Spec
    let process: Spec.Process
    let socket: FileDescriptor
    let cgroups: CgroupGate

    init(request: InitRequest, spec: Spec, process: Spec.Process, socket: FileDescriptor) {
        self.request = request
        self.spec = spec
        self.process = process
        self.socket = socket
        let createsNamespace = NamespacePlan(spec.linux?.namespaces ?? []).creates(.cgroup)
        cgroups = CgroupGate(
            socket: request.awaitsCgroups ? socket : nil, createsNamespace: createsNamespace,
            movesItself: request.movesIntoCgroups)
    }

    /// Where the init waits for its cgroups. The runtime makes them and moves the init there while the
    /// init builds its rootfs, and says so twice: with the directories once they exist (enough to
    /// bind-mount them), with a byte once the init sits in them and their resources are set — needed
    /// before a cgroup namespace is made (it is rooted at the init's cgroup), hooks run or the program
    /// starts. Without a socket (exec) the init is already where it belongs.
    final class CgroupGate {
        private var socket: FileDescriptor?
        private var known: [String]?
        private var createsNamespace: Bool
        private let movesItself: Bool

        init(socket: FileDescriptor?, createsNamespace: Bool, movesItself: Bool) {
            self.socket = socket
            self.createsNamespace = createsNamespace
            self.movesItself = movesItself
        }

        /// The container's cgroup directories, once they exist (nil without a gate). On cgroup v1 the
        /// init then moves itself into each controller's directory (the runtime asks for it when the
        /// init can): a thread writing 0 to `tasks` moves itself without the global lock a move by pid
        /// takes, whose RCU grace period (~7 ms here) was the longest wait of a container's start. The
        /// init is single-threaded, so this moves the process; what it starts is born where it is.
        func directories() throws(RuntimeError) -> [String]? {
            guard let socket else { return known }
            if known == nil {
                guard let frame = try Frames.receiveRaw(on: socket) else {
                    throw .other("runtime went away while making cgroups")
                }
                let directories = String(decoding: frame, as: UTF8.self).split(separator: "\n").map(String.init)
                known = directories
                if movesItself {
                    for directory in directories where access(directory + "/tasks", F_OK) == 0 {
                        // Not the devices controller yet: the runtime is writing its rules now, and
                        // between their first line (deny all) and the allows that follow, the mknod
                        // of /dev/null, /dev/full… in the rootfs would fail with EPERM. The init joins
                        // it once the rules are in (`pass`), after making its devices, as under runc.
                        if access(directory + "/devices.allow", F_OK) == 0 {
                            devicesDirectory = directory
                            continue
                        }
                        try join(directory)
                    }
                }
            }
            return known
        }

        /// The devices controller's directory, joined in `pass` (cgroup v1, the init moving itself).
        private var devicesDirectory: String?

        private func join(_ directory: String) throws(RuntimeError) {
            try RuntimeError.wrap("cgroup: joining \(directory)") { () throws(SystemCallError) in
                let tasks = try FileDescriptor.open(directory + "/tasks", O_WRONLY)
                try tasks.write("0")
            }
        }

        /// Waits until the init sits in its cgroups, then makes the cgroup namespace if config.json asks.
        func pass() throws(RuntimeError) {
            if let socket {
                _ = try directories()
                guard try Frames.receiveByte(on: socket) else {
                    throw .other("runtime went away while joining cgroups")
                }
                self.socket = nil
                if let devicesDirectory {
                    try join(devicesDirectory)
                    self.devicesDirectory = nil
                }
            }
            if createsNamespace {
                _ = try RuntimeError.wrap("creating cgroup namespace") { () throws(SystemCallError) in
                    try sys("unshare(CLONE_NEWCGROUP)") { berth_unshare(BERTH_CLONE_NEWCGROUP) }
                }
                createsNamespace = false
            }
        }
    }

    func run() throws(RuntimeError) -> Never {
        if request.mode == .exec {
            try prepareExec()
        } else {
            try prepareContainer()
        }
        // As runc: a program that is not there fails `create` (or `exec`), not the later `start`, whose
        // caller could not tell why the container ended.
        let executable = try resolveExecutable()
        // The filter is built (or found in the cache) now: after `start`, only loading it is left.
        let seccomp = try spec.linux?.seccomp.map { profile throws(RuntimeError) in
            try PreparedSeccomp(profile, cache: seccompCache)
        }
        try Frames.send(InitMessage(kind: .created), on: socket)
        try waitForStart()
        if request.mode != .exec {
            try Hooks.run(.startContainer, spec: spec, state: state(.created))
        }
        try becomeUserProcess(executable: executable, seccomp: seccomp)
    }

    var seccompCache: SeccompCache? { request.seccompCacheFd.map(SeccompCache.init(directory:)) }

    /// A container's filter, ready to load: compiled BPF when it can be, else the program to build.
    struct PreparedSeccomp {
        let program: SeccompProgram
        let compiled: [UInt8]?
        init(_ profile: Spec.Seccomp, cache: SeccompCache?) throws(RuntimeError) {
            program = try SeccompProgram(profile)
            compiled = try program.prepare(cache: cache)
        }
    }

    func state(_ status: ContainerStatus) -> OCIState {
        OCIState(
            ociVersion: spec.ociVersion, id: request.containerID, status: status, pid: getpid(),
            bundle: request.bundle, annotations: spec.annotations)
    }

    // MARK: Container setup (create and run)

    func prepareContainer() throws(RuntimeError) {
        var rootfs = RootfsSetup(spec: spec, rootfs: request.rootfs, bundle: request.bundle)
        rootfs.cgroupGate = cgroups
        try rootfs.prepare()
        try cgroups.pass()

        // prestart and createRuntime hooks run in the runtime namespace, by the parent.
        if !Hooks.hooks(.prestart, in: spec).isEmpty || !Hooks.hooks(.createRuntime, in: spec).isEmpty {
            try Frames.send(InitMessage(kind: .runtimeHooks), on: socket)
            guard try Frames.receiveByte(on: socket) else { throw .other("runtime went away during hooks") }
        }
        try Hooks.run(.createContainer, spec: spec, state: state(.creating))

        try rootfs.pivot(noPivot: request.noPivot)
        if let hostname = spec.hostname, !hostname.isEmpty {
            _ = try RuntimeError.wrap("sethostname") { () throws(SystemCallError) in
                try sys("sethostname", hostname) { berth_sethostname(hostname, hostname.utf8.count) }
            }
        }
        if let domainname = spec.domainname, !domainname.isEmpty {
            _ = try RuntimeError.wrap("setdomainname") { () throws(SystemCallError) in
                try sys("setdomainname", domainname) { berth_setdomainname(domainname, domainname.utf8.count) }
            }
        }
        try applySysctls()
        try rootfs.finish()
        try setUpProcess()
    }

    func applySysctls() throws(RuntimeError) {
        guard let sysctl = spec.linux?.sysctl, !sysctl.isEmpty else { return }
        for key in sysctl.keys.sorted() {
            let path = "/proc/sys/" + key.split(separator: ".").joined(separator: "/")
            try RuntimeError.wrap("sysctl \(key)") { () throws(SystemCallError) in
                let fd = try FileSystemMagic.openProc(path, O_WRONLY | O_TRUNC)
                try fd.write(sysctl[key]!)
            }
        }
    }

    // MARK: Exec into a running container

    /// The mount namespace is joined here, after exec: the runtime binary (dynamically linked) must be
    /// exec'd while the host's filesystem, with its dynamic loader, is still the one in view.
    func prepareExec() throws(RuntimeError) {
        if let mountNamespace = request.mountNamespaceFd {
            _ = try RuntimeError.wrap("joining the container's mount namespace") { () throws(SystemCallError) in
                try sys("setns(CLONE_NEWNS)") { berth_setns(mountNamespace, BERTH_CLONE_NEWNS) }
            }
            Glibc.close(mountNamespace)
            _ = try RuntimeError.wrap("chdir /") { () throws(SystemCallError) in try sys("chdir", "/") { chdir("/") } }
        }
        try setUpProcess()
    }

    // MARK: Common to init and exec

    /// Terminal, keyring, LSM labels, rlimits, OOM score, working directory.
    func setUpProcess() throws(RuntimeError) {
        if process.terminal == true, let console = request.consoleFd {
            try Terminal.setUp(
                consoleSocket: FileDescriptor(owning: console), size: process.consoleSize,
                bindConsole: request.mode != .exec)
        }
        if !request.noNewKeyring && request.mode != .exec {
            let name = "_ses.\(request.containerID)"
            // Docker's default seccomp profile denies keyctl; runc then carries on without a keyring.
            if berth_join_session_keyring(name) < 0 && errno != ENOSYS && errno != EPERM {
                throw .system(
                    SystemCallError(call: "keyctl(KEYCTL_JOIN_SESSION_KEYRING)", errno: errno),
                    context: "session keyring")
            }
        }
        try SecurityLabels.apply(apparmor: process.apparmorProfile, selinux: process.selinuxLabel)
        if let adjustment = process.oomScoreAdj { try ProcessIdentity.setOOMScoreAdjustment(adjustment) }
        try RlimitPlan(process.rlimits).apply()
        try changeDirectory()
    }

    /// chdir into cwd and make sure it is inside the container (CVE-2024-21626: a leaked host
    /// descriptor as cwd shows up as "(unreachable)").
    func changeDirectory() throws(RuntimeError) {
        let cwd = process.cwd
        if chdir(cwd) != 0 {
            let code = errno
            if code == ENOENT, request.mode != .exec {
                try RuntimeError.wrap("creating cwd") { () throws(SystemCallError) in
                    try FileSystem.makeDirectories(cwd)
                }
                _ = try RuntimeError.wrap("chdir") { () throws(SystemCallError) in try sys("chdir", cwd) { chdir(cwd) }
                }
            } else {
                throw .system(SystemCallError(call: "chdir", errno: code, subject: cwd), context: "process.cwd")
            }
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else {
            // glibc reports an unreachable cwd (one outside our root) as ENOENT.
            if errno == ENOENT { throw .other("current working directory \(cwd) is outside of the container") }
            throw .system(SystemCallError(call: "getcwd", errno: errno), context: "checking cwd")
        }
        let path = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if !path.hasPrefix("/") {
            throw .other("current working directory is outside of the container: \(path)")
        }
    }

    func waitForStart() throws(RuntimeError) {
        switch request.mode {
        case .create:
            guard let fifo = request.fifoFd else { throw .other("no exec fifo") }
            // Blocks until `start` opens the fifo for reading.
            let writer = try RuntimeError.wrap("opening exec fifo") { () throws(SystemCallError) in
                try FileDescriptor.open("/proc/self/fd/\(fifo)", O_WRONLY)
            }
            try RuntimeError.wrap("signalling start") { () throws(SystemCallError) in try writer.write("0") }
            writer.close()
            Glibc.close(fifo)
        case .run:
            guard try Frames.receiveByte(on: socket) else { throw .other("runtime went away before start") }
        case .exec:
            break
        }
    }

    /// Drops to the configured user and capabilities, installs seccomp, and execs the program.
    func becomeUserProcess(executable: String, seccomp prepared: PreparedSeccomp?) throws(RuntimeError) -> Never {
        let capabilities = try CapabilityPlan(process.capabilities)
        let noNewPrivileges = process.noNewPrivileges == true
        var seccomp = prepared
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before dropping privileges.
        if let program = seccomp, !noNewPrivileges {
            try installSeccomp(program)
            seccomp = nil
        }
        for warning in try ProcessIdentity.apply(
            user: process.user, capabilities: capabilities, noNewPrivileges: noNewPrivileges)
        {
            RuntimeLog.debugMessage(warning)
        }
        if let program = seccomp { try installSeccomp(program) }
        try closeDescriptors()
        // As under runc, the program starts with every signal at its default action. execve resets caught
        // signals but keeps ignored ones, so a caller that ignored TERM (`trap '' TERM`, nohup, a
        // supervisor) would hand that on — and a POSIX shell cannot trap a signal ignored when it started,
        // so `kill ID TERM` would never stop it.
        berth_reset_signal_dispositions()
        let arguments = process.args ?? []
        let environment = process.env ?? []
        _ = withCStringArray(arguments) { argv in
            withCStringArray(environment) { envp in
                execve(executable, argv, envp)
            }
        }
        throw .system(
            SystemCallError(call: "execve", errno: errno, subject: executable),
            context: "starting the container process")
    }

    func installSeccomp(_ prepared: PreparedSeccomp) throws(RuntimeError) {
        if let compiled = prepared.compiled {
            try prepared.program.loadCompiled(compiled)
            return
        }
        // Open O_PATH: openat through it works for lookups; it is closed with the others before exec.
        let listener = try prepared.program.load(cache: seccompCache)
        if let listener, let path = spec.linux?.seccomp?.listenerPath {
            try SeccompProgram.sendToListener(path: path, fd: listener, state: listenerState())
        }
    }

    func listenerState() -> [UInt8] {
        let text =
            "{\"ociVersion\":\"\(spec.ociVersion)\",\"fds\":[\"seccompFd\"],\"pid\":\(getpid()),"
            + "\"metadata\":\"\(spec.linux?.seccomp?.listenerMetadata ?? "")\",\"state\":{\"ociVersion\":\"\(spec.ociVersion)\","
            + "\"id\":\"\(request.containerID)\",\"status\":\"creating\",\"pid\":\(getpid()),\"bundle\":\"\(request.bundle)\"}}"
        return Array(text.utf8)
    }

    /// args[0] looked up in the container's PATH, as execvp would, but before privileges are dropped so
    /// a missing binary is reported clearly.
    func resolveExecutable() throws(RuntimeError) -> String {
        let program = process.args?.first ?? ""
        if program.contains("/") {
            guard access(program, F_OK) == 0 else {
                throw .system(SystemCallError(call: "exec", errno: errno, subject: program), context: "process.args[0]")
            }
            // runc's LookPath: a file that cannot be executed (or a directory) fails here too.
            var info = stat()
            if access(program, X_OK) != 0 || stat(program, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                throw .system(
                    SystemCallError(call: "exec", errno: EACCES, subject: program), context: "process.args[0]")
            }
            return program
        }
        let path =
            (process.env ?? []).first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw .other("exec: \"\(program)\": executable file not found in $PATH")
    }

    /// Every descriptor above the preserved ones is closed on exec; the preserved ones stay open.
    func closeDescriptors() throws(RuntimeError) {
        let firstClosed = UInt32(3 + request.preserveFds)
        for fd in 3..<Int32(firstClosed) {
            _ = berth_fcntl_int(fd, F_SETFD, 0)
        }
        if berth_close_range(firstClosed, UInt32.max, 4 /* CLOSE_RANGE_CLOEXEC */) != 0 {
            // Before Linux 5.11: mark each open descriptor by hand.
            let names = (try? FileSystem.listDirectory("/proc/self/fd")) ?? []
            for name in names {
                if let fd = Int32(name), fd >= Int32(firstClosed) { _ = berth_fcntl_int(fd, F_SETFD, FD_CLOEXEC) }
            }
        }
    }
}
