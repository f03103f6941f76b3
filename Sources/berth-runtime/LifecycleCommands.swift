#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthJSON
import BerthOS
import BerthRuntime

/// The flags `create` and `run` share, as runc spells them.
struct CreateFlags: ParsableArguments {
    @Option(name: [.customShort("b"), .long], help: "Path to the bundle.") var bundle = "."
    @Option(name: .customLong("pid-file"), help: "Write the init's pid to this file.") var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "Unix socket to receive the pty master.") var consoleSocket:
        String?
    @Flag(name: .customLong("no-pivot"), help: "Use MS_MOVE and chroot instead of pivot_root.") var noPivot = false
    @Flag(name: .customLong("no-new-keyring"), help: "Keep the caller's session keyring.") var noNewKeyring = false
    @Option(name: .customLong("preserve-fds"), help: "Pass this many descriptors after stdio.") var preserveFds = 0

    func options(id: String) -> CreateOptions {
        var options = CreateOptions(id: id, bundle: bundle)
        options.pidFile = pidFile
        options.consoleSocket = consoleSocket
        options.noPivot = noPivot
        options.noNewKeyring = noNewKeyring
        options.preserveFds = preserveFds
        return options
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a container (its process waits for start).")
    @OptionGroup var flags: CreateFlags
    @Argument(help: "Container id.") var id: String

    func run() {
        runOrExit { () throws(RuntimeError) in try runtime().create(flags.options(id: id)) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and start a container; exit with its status.")
    @OptionGroup var flags: CreateFlags
    @Flag(name: [.customShort("d"), .long], help: "Return once the container runs.") var detach = false
    @Argument(help: "Container id.") var id: String

    func run() {
        var status: Int32 = 0
        runOrExit { () throws(RuntimeError) in status = try runtime().run(flags.options(id: id), detach: detach) }
        Glibc.exit(status)
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start a created container.")
    @Argument var id: String
    func run() { runOrExit { () throws(RuntimeError) in try runtime().start(id: id) } }
}

struct State: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a container's state as JSON.")
    @Argument var id: String
    func run() {
        runOrExit { () throws(RuntimeError) in
            print(try JSONText.encode(try runtime().state(id: id)))
        }
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a signal (default SIGTERM) to a container.")
    @Flag(name: [.customShort("a"), .long], help: "Signal every process in the container.") var all = false
    @Argument var id: String
    @Argument var signal: String = "SIGTERM"
    func run() {
        runOrExit { () throws(RuntimeError) in
            try runtime().kill(id: id, signal: try Signals.parse(signal), all: all)
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a container's resources.")
    @Flag(name: [.customShort("f"), .long], help: "Kill a running container first.") var force = false
    @Argument var id: String
    func run() { runOrExit { () throws(RuntimeError) in try runtime().delete(id: id, force: force) } }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Freeze every process of a container.")
    @Argument var id: String
    func run() { runOrExit { () throws(RuntimeError) in try runtime().pause(id: id) } }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Thaw a paused container.")
    @Argument var id: String
    func run() { runOrExit { () throws(RuntimeError) in try runtime().resume(id: id) } }
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change a running container's cgroup limits.",
        discussion: "--resources FILE (or - for stdin) holds the OCI LinuxResources JSON, as runc's.")
    @Option(name: [.customShort("r"), .long], help: "LinuxResources JSON file, - for stdin.") var resources: String?
    @Option(name: .long, help: "Memory limit in bytes.") var memory: Int64?
    @Option(name: .customLong("memory-swap"), help: "Memory plus swap limit in bytes.") var memorySwap: Int64?
    @Option(name: .customLong("memory-reservation"), help: "Memory soft limit in bytes.") var memoryReservation: Int64?
    @Option(name: .customLong("cpu-shares"), help: "CPU shares.") var cpuShares: UInt64?
    @Option(name: .customLong("cpu-quota"), help: "CFS quota in microseconds.") var cpuQuota: Int64?
    @Option(name: .customLong("cpu-period"), help: "CFS period in microseconds.") var cpuPeriod: UInt64?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs allowed.") var cpusetCpus: String?
    @Option(name: .customLong("cpuset-mems"), help: "Memory nodes allowed.") var cpusetMems: String?
    @Option(name: .customLong("pids-limit"), help: "Maximum number of processes.") var pidsLimit: Int64?
    @Argument var id: String

    func run() {
        runOrExit { () throws(RuntimeError) in
            var update = Spec.Resources()
            if let path = resources {
                let bytes: [UInt8]
                do {
                    bytes = path == "-" ? try FileDescriptor(owning: dup(0)).readAll() : try FileSystem.readFile(path)
                } catch { throw .other("reading resources from \(path): \(error)") }
                do { update = try JSONTreeDecoder.decode(Spec.Resources.self, from: bytes) } catch {
                    throw .other("invalid resources in \(path): \(error)")
                }
            }
            if memory != nil || memorySwap != nil || memoryReservation != nil {
                var m = update.memory ?? Spec.Memory()
                m.limit = memory ?? m.limit
                m.swap = memorySwap ?? m.swap
                m.reservation = memoryReservation ?? m.reservation
                update.memory = m
            }
            if cpuShares != nil || cpuQuota != nil || cpuPeriod != nil || cpusetCpus != nil || cpusetMems != nil {
                var c = update.cpu ?? Spec.CPU()
                c.shares = cpuShares ?? c.shares
                c.quota = cpuQuota ?? c.quota
                c.period = cpuPeriod ?? c.period
                c.cpus = cpusetCpus ?? c.cpus
                c.mems = cpusetMems ?? c.mems
                update.cpu = c
            }
            if let pidsLimit { update.pids = Spec.Pids(limit: pidsLimit) }
            try runtime().update(id: id, resources: update)
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List containers.")
    @Option(name: [.customShort("f"), .long], help: "table or json") var format = "table"
    @Flag(name: [.customShort("q"), .long], help: "Only ids.") var quiet = false
    func run() {
        let containers = runtime().list()
        if quiet {
            for container in containers { print(container.id) }
            return
        }
        if format == "json" {
            runOrExit { () throws(RuntimeError) in print(try JSONText.encode(containers)) }
            return
        }
        var rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        for c in containers {
            rows.append([c.id, String(c.pid), c.status.rawValue, c.bundle, c.created, c.owner])
        }
        print(Table.render(rows), terminator: "")
    }
}

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List a container's processes.")
    @Option(name: [.customShort("f"), .long], help: "table or json") var format = "table"
    @Argument var id: String
    @Argument(parsing: .captureForPassthrough, help: "Arguments for ps(1) (default -ef).") var psArguments: [String] =
        []

    func run() {
        var pids: [Int32] = []
        runOrExit { () throws(RuntimeError) in pids = try runtime().processes(id: id) }
        if format == "json" {
            print("[" + pids.map(String.init).joined(separator: ",") + "]")
            return
        }
        runOrExit { () throws(RuntimeError) in
            print(
                try ProcessTable.render(pids: pids, psArguments: psArguments.isEmpty ? ["-ef"] : psArguments),
                terminator: "")
        }
    }
}
