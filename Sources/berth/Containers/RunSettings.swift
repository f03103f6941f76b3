import ArgumentParser
import BerthEngine

/// What `run` and `create` were asked, as plain values. ArgumentParser fills it through ``RunOptions``;
/// ``HotRun`` fills it directly for the common command lines, without ArgumentParser's cost in a fresh
/// process (see there). Everything after parsing (the configuration, its checks and messages) is here,
/// so both paths end in the same code.
struct RunSettings: Equatable {
    var name: String? = nil
    var env: [String] = []
    var envFiles: [String] = []
    var workdir: String? = nil
    var user: String? = nil
    var entrypoint: String? = nil
    var hostname: String? = nil
    var domainName: String? = nil
    var label: [String] = []
    var readOnly: Bool = false
    var tmpfs: [String] = []
    var capAdd: [String] = []
    var capDrop: [String] = []
    var privileged: Bool = false
    var securityOpt: [String] = []
    var ulimit: [String] = []
    var memory: String? = nil
    var memorySwap: String? = nil
    var memoryReservation: String? = nil
    var cpus: String? = nil
    var cpuShares: Int64? = nil
    var cpusetCpus: String? = nil
    var cpusetMems: String? = nil
    var pidsLimit: Int64? = nil
    var device: [String] = []
    var `init`: Bool = false
    var stopSignal: String? = nil
    var stopTimeout: Int? = nil
    var shmSize: String? = nil
    var tty: Bool = false
    var interactive: Bool = false
    var autoRemove: Bool = false
    var restart: String? = nil
    var healthCmd: String? = nil
    var healthInterval: String? = nil
    var healthTimeout: String? = nil
    var healthRetries: Int? = nil
    var healthStartPeriod: String? = nil
    var noHealthcheck: Bool = false
    var runtime: String? = nil
    var network: String? = nil
    var net: String? = nil
    var publish: [String] = []
    var publishAll: Bool = false
    var expose: [String] = []
    var dns: [String] = []
    var dnsSearch: [String] = []
    var dnsOption: [String] = []
    var addHost: [String] = []
    var ip: String? = nil
    var networkAlias: [String] = []
    var volume: [String] = []
    var mount: [String] = []
    var logDriver: String? = nil
    var logOpt: [String] = []
    var sysctl: [String] = []

    /// The configuration file's defaults for what the command line left unsaid (log driver and options).
    func applyDefaults(_ engine: EngineConfiguration, to c: inout ContainerConfiguration) {
        if logDriver == nil, let driver = engine.logDriver { c.logDriver = driver }
        if logDriver == nil || logDriver == engine.logDriver {
            for (key, value) in engine.logOptions where c.logOptions[key] == nil { c.logOptions[key] = value }
        }
    }

    /// The request, ready for the engine. Values the helpers parse are checked here, naming the option.
    func configuration(image: String, command: [String]) throws -> ContainerConfiguration {
        var c = ContainerConfiguration(image: image)
        if !command.isEmpty { c.cmd = command }
        if let entrypoint { c.entrypoint = entrypoint.isEmpty ? [""] : [entrypoint] }
        for file in envFiles { c.env += try RunOptionParsing.environmentFile(file) }
        for entry in env { c.env.append(try RunOptionParsing.environment(entry)) }
        c.workingDir = workdir
        if let workdir, !workdir.hasPrefix("/") {
            throw ValidationError("the working directory '\(workdir)' is invalid, it needs to be an absolute path")
        }
        c.user = user
        c.hostname = hostname
        c.domainname = domainName
        for entry in label {
            let parts = entry.split(separator: "=", maxSplits: 1)
            c.labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        c.readonlyRootfs = readOnly
        c.capAdd = capAdd
        c.capDrop = capDrop
        c.privileged = privileged
        c.securityOpt = securityOpt
        c.initProcess = self.`init`
        c.stopSignal = stopSignal
        c.stopTimeout = stopTimeout
        c.tty = tty
        c.openStdin = interactive
        c.autoRemove = autoRemove
        if let restart {
            do { c.restartPolicy = try RunOptionParser.parseRestartPolicy(restart) } catch {
                throw ValidationError("\(error)")
            }
        }
        c.runtime = runtime
        if let mode = network ?? net { c.networkMode = mode }
        c.publishAllPorts = publishAll
        c.dns = dns
        c.dnsSearch = dnsSearch
        c.dnsOptions = dnsOption
        c.extraHosts = addHost
        c.ipAddress = ip
        c.networkAliases = networkAlias
        if let logDriver { c.logDriver = logDriver }
        for entry in logOpt {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("invalid log-opt: \(entry)") }
            c.logOptions[String(parts[0])] = String(parts[1])
        }
        for entry in sysctl {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else {
                throw ValidationError(
                    "invalid argument \"\(entry)\" for \"--sysctl\" flag: sysctl '\(entry)' is not allowed")
            }
            c.sysctls[String(parts[0])] = String(parts[1])
        }
        c.resources.cpuShares = cpuShares
        c.resources.cpusetCpus = cpusetCpus
        c.resources.cpusetMems = cpusetMems
        c.resources.pidsLimit = pidsLimit
        try RunOptionParsing.apply(self, to: &c)
        return c
    }

    /// Every option's names and how it takes a value: the table ``HotRun`` parses with. A test holds it
    /// to ArgumentParser's view of ``RunOptions`` (names, flags, repeatable options).
    static let options: [HotOption<RunSettings>] = [
        .single(["--name"]) {
            $0.name = $1; return true
        },
        .repeated(["-e", "--env"]) { $0.env.append($1) },
        .repeated(["--env-file"]) { $0.envFiles.append($1) },
        .single(["-w", "--workdir"]) {
            $0.workdir = $1; return true
        },
        .single(["-u", "--user"]) {
            $0.user = $1; return true
        },
        .single(["--entrypoint"]) {
            $0.entrypoint = $1; return true
        },
        .single(["-h", "--hostname"]) {
            $0.hostname = $1; return true
        },
        .single(["--domainname"]) {
            $0.domainName = $1; return true
        },
        .repeated(["-l", "--label"]) { $0.label.append($1) },
        .flag(["--read-only"]) { $0.readOnly = true },
        .repeated(["--tmpfs"]) { $0.tmpfs.append($1) },
        .repeated(["--cap-add"]) { $0.capAdd.append($1) },
        .repeated(["--cap-drop"]) { $0.capDrop.append($1) },
        .flag(["--privileged"]) { $0.privileged = true },
        .repeated(["--security-opt"]) { $0.securityOpt.append($1) },
        .repeated(["--ulimit"]) { $0.ulimit.append($1) },
        .single(["-m", "--memory"]) {
            $0.memory = $1; return true
        },
        .single(["--memory-swap"]) {
            $0.memorySwap = $1; return true
        },
        .single(["--memory-reservation"]) {
            $0.memoryReservation = $1; return true
        },
        .single(["--cpus"]) {
            $0.cpus = $1; return true
        },
        .single(["-c", "--cpu-shares"]) {
            guard let v = Int64($1) else { return false }; $0.cpuShares = v; return true
        },
        .single(["--cpuset-cpus"]) {
            $0.cpusetCpus = $1; return true
        },
        .single(["--cpuset-mems"]) {
            $0.cpusetMems = $1; return true
        },
        .single(["--pids-limit"]) {
            guard let v = Int64($1) else { return false }; $0.pidsLimit = v; return true
        },
        .repeated(["--device"]) { $0.device.append($1) },
        .flag(["--init"]) { $0.`init` = true },
        .single(["--stop-signal"]) {
            $0.stopSignal = $1; return true
        },
        .single(["--stop-timeout"]) {
            guard let v = Int($1) else { return false }; $0.stopTimeout = v; return true
        },
        .single(["--shm-size"]) {
            $0.shmSize = $1; return true
        },
        .flag(["-t", "--tty"]) { $0.tty = true },
        .flag(["-i", "--interactive"]) { $0.interactive = true },
        .flag(["--rm"]) { $0.autoRemove = true },
        .single(["--restart"]) {
            $0.restart = $1; return true
        },
        .single(["--health-cmd"]) {
            $0.healthCmd = $1; return true
        },
        .single(["--health-interval"]) {
            $0.healthInterval = $1; return true
        },
        .single(["--health-timeout"]) {
            $0.healthTimeout = $1; return true
        },
        .single(["--health-retries"]) {
            guard let v = Int($1) else { return false }; $0.healthRetries = v; return true
        },
        .single(["--health-start-period"]) {
            $0.healthStartPeriod = $1; return true
        },
        .flag(["--no-healthcheck"]) { $0.noHealthcheck = true },
        .single(["--runtime"]) {
            $0.runtime = $1; return true
        },
        .single(["--network"]) {
            $0.network = $1; return true
        },
        .single(["--net"]) {
            $0.net = $1; return true
        },
        .repeated(["-p", "--publish"]) { $0.publish.append($1) },
        .flag(["-P", "--publish-all"]) { $0.publishAll = true },
        .repeated(["--expose"]) { $0.expose.append($1) },
        .repeated(["--dns"]) { $0.dns.append($1) },
        .repeated(["--dns-search"]) { $0.dnsSearch.append($1) },
        .repeated(["--dns-option"]) { $0.dnsOption.append($1) },
        .repeated(["--add-host"]) { $0.addHost.append($1) },
        .single(["--ip"]) {
            $0.ip = $1; return true
        },
        .repeated(["--network-alias"]) { $0.networkAlias.append($1) },
        .repeated(["-v", "--volume"]) { $0.volume.append($1) },
        .repeated(["--mount"]) { $0.mount.append($1) },
        .single(["--log-driver"]) {
            $0.logDriver = $1; return true
        },
        .repeated(["--log-opt"]) { $0.logOpt.append($1) },
        .repeated(["--sysctl"]) { $0.sysctl.append($1) },
    ]
}
