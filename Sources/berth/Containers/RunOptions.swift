import ArgumentParser
import BerthEngine
import BerthNetwork
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// `docker run` / `docker create` options, turned into a ``ContainerConfiguration``.
struct RunOptions: ParsableArguments {
    @Option(name: .long, help: "Assign a name to the container.") var name: String?
    @Option(name: .shortAndLong, help: "Set environment variables (KEY=value, or KEY to pass this shell's).") var env:
        [String] = []
    @Option(name: .customLong("env-file"), help: "Read in a file of environment variables.") var envFiles: [String] = []
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .shortAndLong, help: "Username or UID (format: <name|uid>[:<group|gid>]).") var user: String?
    @Option(help: "Overwrite the default ENTRYPOINT of the image.") var entrypoint: String?
    @Option(name: .shortAndLong, help: "Container host name.") var hostname: String?
    @Option(name: .customLong("domainname"), help: "Container NIS domain name.") var domainName: String?
    @Option(name: .shortAndLong, help: "Set meta data on a container (KEY=value).") var label: [String] = []
    @Flag(name: .customLong("read-only"), help: "Mount the container's root filesystem as read only.") var readOnly =
        false
    @Option(help: "Mount a tmpfs directory (PATH[:OPTIONS]).") var tmpfs: [String] = []
    @Option(name: .customLong("cap-add"), help: "Add Linux capabilities.") var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop Linux capabilities.") var capDrop: [String] = []
    @Flag(help: "Give extended privileges to this container.") var privileged = false
    @Option(name: .customLong("security-opt"), help: "Security options (seccomp=FILE|unconfined, no-new-privileges).")
    var securityOpt: [String] = []
    @Option(help: "Ulimit options (NAME=SOFT[:HARD]).") var ulimit: [String] = []
    @Option(name: .shortAndLong, help: "Memory limit (e.g. 512m).") var memory: String?
    @Option(name: .customLong("memory-swap"), help: "Swap limit equal to memory plus swap: -1 for unlimited.")
    var memorySwap: String?
    @Option(name: .customLong("memory-reservation"), help: "Memory soft limit.") var memoryReservation: String?
    @Option(help: "Number of CPUs.") var cpus: String?
    @Option(name: [.customShort("c"), .customLong("cpu-shares")], help: "CPU shares (relative weight).") var cpuShares:
        Int64?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs in which to allow execution (0-3, 0,1).") var cpusetCpus:
        String?
    @Option(name: .customLong("cpuset-mems"), help: "MEMs in which to allow execution.") var cpusetMems: String?
    @Option(name: .customLong("pids-limit"), help: "Tune container pids limit (-1 for unlimited).") var pidsLimit:
        Int64?
    @Option(help: "Add a host device to the container.") var device: [String] = []
    @Flag(help: "Run an init inside the container that forwards signals and reaps processes.") var `init` = false
    @Option(name: .customLong("stop-signal"), help: "Signal to stop the container.") var stopSignal: String?
    @Option(name: .customLong("stop-timeout"), help: "Timeout (in seconds) to stop a container.") var stopTimeout: Int?
    @Option(name: .customLong("shm-size"), help: "Size of /dev/shm.") var shmSize: String?
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-TTY.") var tty = false
    @Flag(name: .shortAndLong, help: "Keep STDIN open even if not attached.") var interactive = false
    @Flag(name: .customLong("rm"), help: "Automatically remove the container when it exits.") var autoRemove = false
    @Option(help: "Restart policy to apply when a container exits (no, on-failure[:N], always, unless-stopped).")
    var restart: String?
    @Option(name: .customLong("health-cmd"), help: "Command to run to check health.") var healthCmd: String?
    @Option(name: .customLong("health-interval"), help: "Time between running the check (ms|s|m|h).")
    var healthInterval: String?
    @Option(name: .customLong("health-timeout"), help: "Maximum time to allow one check to run.") var healthTimeout:
        String?
    @Option(name: .customLong("health-retries"), help: "Consecutive failures needed to report unhealthy.")
    var healthRetries: Int?
    @Option(name: .customLong("health-start-period"), help: "Start period for the container to initialize.")
    var healthStartPeriod: String?
    @Flag(name: .customLong("no-healthcheck"), help: "Disable any container-specified HEALTHCHECK.") var noHealthcheck =
        false
    @Option(help: "OCI runtime for this container (berth, runc, crun, or a path).") var runtime: String?
    @Option(
        name: .customLong("network"),
        help: "Connect a container to a network (bridge, none, host, container:NAME, or a network's name).")
    var network: String?
    @Option(name: .customLong("net"), help: .hidden) var net: String?
    @Option(
        name: .shortAndLong, help: "Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto]).")
    var publish: [String] = []
    @Flag(name: [.customShort("P"), .customLong("publish-all")], help: "Publish all exposed ports to random ports.")
    var publishAll = false
    @Option(help: "Expose a port or a range of ports.") var expose: [String] = []
    @Option(help: "Set custom DNS servers.") var dns: [String] = []
    @Option(name: .customLong("dns-search"), help: "Set custom DNS search domains.") var dnsSearch: [String] = []
    @Option(name: .customLong("dns-option"), help: "Set DNS options.") var dnsOption: [String] = []
    @Option(name: .customLong("add-host"), help: "Add a custom host-to-IP mapping (host:ip).") var addHost: [String] =
        []
    @Option(help: "IPv4 address (e.g., 172.30.100.104).") var ip: String?
    @Option(name: .customLong("network-alias"), help: "Add network-scoped alias for the container.") var networkAlias:
        [String] = []
    @Option(name: .shortAndLong, help: "Bind mount a volume (SRC:DST[:OPTS], or DST for an anonymous volume).")
    var volume: [String] = []
    @Option(help: "Attach a filesystem mount to the container (type=bind|volume|tmpfs,…).") var mount: [String] = []
    @Option(name: .customLong("log-driver"), help: "Logging driver for the container (json-file, none, cri).")
    var logDriver: String?
    @Option(name: .customLong("log-opt"), help: "Log driver options (max-size, max-file).") var logOpt: [String] = []
    @Option(help: "Sysctl options (KEY=value).") var sysctl: [String] = []

    /// The parsed values, as plain ones.
    var settings: RunSettings {
        var s = RunSettings()
        s.name = name
        s.env = env
        s.envFiles = envFiles
        s.workdir = workdir
        s.user = user
        s.entrypoint = entrypoint
        s.hostname = hostname
        s.domainName = domainName
        s.label = label
        s.readOnly = readOnly
        s.tmpfs = tmpfs
        s.capAdd = capAdd
        s.capDrop = capDrop
        s.privileged = privileged
        s.securityOpt = securityOpt
        s.ulimit = ulimit
        s.memory = memory
        s.memorySwap = memorySwap
        s.memoryReservation = memoryReservation
        s.cpus = cpus
        s.cpuShares = cpuShares
        s.cpusetCpus = cpusetCpus
        s.cpusetMems = cpusetMems
        s.pidsLimit = pidsLimit
        s.device = device
        s.`init` = self.`init`
        s.stopSignal = stopSignal
        s.stopTimeout = stopTimeout
        s.shmSize = shmSize
        s.tty = tty
        s.interactive = interactive
        s.autoRemove = autoRemove
        s.restart = restart
        s.healthCmd = healthCmd
        s.healthInterval = healthInterval
        s.healthTimeout = healthTimeout
        s.healthRetries = healthRetries
        s.healthStartPeriod = healthStartPeriod
        s.noHealthcheck = noHealthcheck
        s.runtime = runtime
        s.network = network
        s.net = net
        s.publish = publish
        s.publishAll = publishAll
        s.expose = expose
        s.dns = dns
        s.dnsSearch = dnsSearch
        s.dnsOption = dnsOption
        s.addHost = addHost
        s.ip = ip
        s.networkAlias = networkAlias
        s.volume = volume
        s.mount = mount
        s.logDriver = logDriver
        s.logOpt = logOpt
        s.sysctl = sysctl
        return s
    }

    func applyDefaults(_ engine: EngineConfiguration, to c: inout ContainerConfiguration) {
        settings.applyDefaults(engine, to: &c)
    }
    func configuration(image: String, command: [String]) throws -> ContainerConfiguration {
        try settings.configuration(image: image, command: command)
    }
}

/// Parsing of option values shared by the verbs.
enum RunOptionParsing {
    /// `-e KEY=value`, or `KEY` alone taking this shell's value (docker's CLI resolves it before sending).
    static func environment(_ entry: String) throws -> String {
        do { return try RunOptionParser.parseEnv(entry, lookup: shellValue) } catch {
            throw ValidationError("\(error)")
        }
    }

    /// `--env-file`: docker's rules (comments, blank lines, `KEY` alone from this shell).
    static func environmentFile(_ path: String) throws -> [String] {
        let text: String
        do { text = try FileSystem.readString(path) } catch {
            throw ValidationError("open \(path): no such file or directory")
        }
        do { return try RunOptionParser.parseEnvFile(text, lookup: shellValue) } catch {
            throw ValidationError("\(path): \(error)")
        }
    }

    static func shellValue(_ key: String) -> String? { getenv(key).map { String(cString: $0) } }

    /// The options whose values the spec layer's parsers read (sizes, devices, mounts), each error naming
    /// its option.
    static func apply(_ o: RunSettings, to c: inout ContainerConfiguration) throws {
        do {
            if let memory = o.memory { c.resources.memory = try RunOptionParser.parseMemory(memory) }
            if let swap = o.memorySwap { c.resources.memorySwap = try RunOptionParser.parseMemorySwap(swap) }
            if let reservation = o.memoryReservation {
                c.resources.memoryReservation = try RunOptionParser.parseMemory(
                    reservation, option: "--memory-reservation")
            }
            if let cpus = o.cpus { c.resources.nanoCPUs = try RunOptionParser.parseCPUs(cpus) }
            if let shm = o.shmSize { c.shmSize = try RunOptionParser.parseMemory(shm, option: "--shm-size") }
            c.ulimits = try o.ulimit.map { text throws(EngineError) in try RunOptionParser.parseUlimit(text) }
            c.devices = try o.device.map { text throws(EngineError) in try RunOptionParser.parseDevice(text) }
            for text in o.tmpfs {
                let (destination, options) = try RunOptionParser.parseTmpfs(text)
                c.tmpfs[destination] = options
            }
            var buffer = [CChar](repeating: 0, count: 4096)
            let directory = getcwd(&buffer, buffer.count).map { String(cString: $0) }
            for text in o.volume { c.mounts.append(try RunOptionParser.parseVolume(text, currentDirectory: directory)) }
            for text in o.mount { c.mounts.append(try RunOptionParser.parseMount(text, currentDirectory: directory)) }
            // docker creates a missing -v host directory (not a missing --mount source).
            for (index, text) in o.volume.enumerated() where c.mounts[index].type == .bind && !text.isEmpty {
                let source = c.mounts[index].source
                if !FileSystem.exists(source) { try? FileSystem.makeDirectories(source, mode: 0o755) }
            }
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            c.healthcheck = try RunOptionParser.parseHealthcheck(
                command: o.healthCmd, interval: o.healthInterval, timeout: o.healthTimeout,
                startPeriod: o.healthStartPeriod, retries: o.healthRetries,
                disabled: o.noHealthcheck)
        } catch { throw ValidationError("\(error)") }
        for spec in o.publish {
            do {
                for mapping in try PortMapping.parse(spec) {
                    var binding = ContainerConfiguration.PortBinding(
                        containerPort: mapping.containerPort, proto: mapping.proto,
                        hostIP: mapping.hostIP, hostPort: mapping.hostPort)
                    if mapping.hostPortEnd != mapping.hostPort { binding.hostPortEnd = mapping.hostPortEnd }
                    c.portBindings.append(binding)
                    if !c.exposedPorts.contains("\(mapping.containerPort)/\(mapping.proto)") {
                        c.exposedPorts.append("\(mapping.containerPort)/\(mapping.proto)")
                    }
                }
            } catch { throw ValidationError("invalid argument \"\(spec)\" for \"-p, --publish\" flag: \(error)") }
        }
        for spec in o.expose {
            do { c.exposedPorts += try RunOptionParser.parseExpose(spec) } catch { throw ValidationError("\(error)") }
        }
    }
}
