@testable import BerthEngine
import BerthImage
import BerthOCI
import Testing

@Suite("Spec builder: process")
struct SpecProcessTests {
    struct CommandCase: Sendable, CustomTestStringConvertible {
        var requestEntrypoint: [String]?
        var requestCmd: [String]?
        var imageEntrypoint: [String]?
        var imageCmd: [String]?
        var expected: [String]?
        var testDescription: String {
            "ep \(requestEntrypoint as Any) cmd \(requestCmd as Any) over image \(imageEntrypoint as Any) \(imageCmd as Any)"
        }
    }

    static let commandTable: [CommandCase] = [
        // Only the image's.
        .init(imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: ["/entry", "a"]),
        .init(imageCmd: ["sh", "-c", "x"], expected: ["sh", "-c", "x"]),
        // The request's cmd replaces the image's and keeps its entrypoint.
        .init(requestCmd: ["b"], imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: ["/entry", "b"]),
        // The request's entrypoint replaces the image's and drops its cmd.
        .init(requestEntrypoint: ["/mine"], imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: ["/mine"]),
        .init(
            requestEntrypoint: ["/mine", "-x"], requestCmd: ["b"], imageEntrypoint: ["/entry"], imageCmd: ["a"],
            expected: ["/mine", "-x", "b"]),
        // --entrypoint "" (docker's CLI sends [""]): no entrypoint and no image cmd.
        .init(
            requestEntrypoint: [""], requestCmd: ["b"], imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: ["b"]),
        .init(requestEntrypoint: [""], imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: nil),
        // An empty entrypoint list (API): no entrypoint, the image's cmd still applies.
        .init(requestEntrypoint: [], imageEntrypoint: ["/entry"], imageCmd: ["a"], expected: ["a"]),
        // An empty cmd list is no cmd.
        .init(requestCmd: [], imageCmd: ["a"], expected: ["a"]),
        // Nothing anywhere.
        .init(expected: nil),
        .init(requestCmd: ["/bin/true"], expected: ["/bin/true"]),
    ]

    @Test("entrypoint and cmd follow docker's merge", arguments: commandTable)
    func commandTableHolds(_ row: CommandCase) throws {
        var request = ContainerConfiguration(image: "i")
        request.entrypoint = row.requestEntrypoint
        request.cmd = row.requestCmd
        let config = imageConfig(entrypoint: row.imageEntrypoint, cmd: row.imageCmd)
        if let expected = row.expected {
            #expect(try ContainerProcess.arguments(request: request, image: config) == expected)
        } else {
            #expect(
                invalidReason { _ = try ContainerProcess.arguments(request: request, image: config) }
                    == "no command specified")
        }
    }

    @Test("with no image config at all the request's command is used")
    func noImageConfig() throws {
        var request = ContainerConfiguration(image: "i")
        request.entrypoint = ["/e"]
        #expect(try ContainerProcess.arguments(request: request, image: nil) == ["/e"])
    }

    @Test("environment: defaults first, request overrides image in place, KEY alone removes")
    func environmentMerge() {
        var request = ContainerConfiguration(image: "i")
        request.env = ["B=request", "DROP", "NEW=1", "PATH=/custom"]
        let config = imageConfig(env: ["A=image", "B=image", "DROP=image", "PATH=/image/bin"])
        let env = ContainerProcess.environment(request: request, image: config, hostname: "h1")
        #expect(env == ["PATH=/custom", "HOSTNAME=h1", "B=request", "NEW=1", "A=image"])
    }

    @Test("environment: PATH default when absent, image PATH replaces it, TERM with a tty")
    func environmentDefaults() {
        var request = ContainerConfiguration(image: "i")
        #expect(
            ContainerProcess.environment(request: request, image: nil, hostname: "h") == [
                "PATH=\(ContainerProcess.defaultPath)", "HOSTNAME=h",
            ])
        request.tty = true
        #expect(
            ContainerProcess.environment(request: request, image: imageConfig(env: ["PATH=/x"]), hostname: "h") == [
                "PATH=/x", "HOSTNAME=h", "TERM=xterm",
            ])
        request.env = ["TERM"]
        #expect(
            ContainerProcess.environment(request: request, image: nil, hostname: "h") == [
                "PATH=\(ContainerProcess.defaultPath)", "HOSTNAME=h",
            ])
    }

    @Test("working directory: request, else image, else /; relative is an error")
    func workingDirectory() throws {
        var request = ContainerConfiguration(image: "i")
        #expect(try ContainerProcess.workingDirectory(request: request, image: nil) == "/")
        #expect(
            try ContainerProcess.workingDirectory(request: request, image: imageConfig(workingDir: "/srv/")) == "/srv")
        request.workingDir = "/data//x/.."
        #expect(
            try ContainerProcess.workingDirectory(request: request, image: imageConfig(workingDir: "/srv")) == "/data")
        request.workingDir = "rel"
        #expect(
            invalidReason { _ = try ContainerProcess.workingDirectory(request: request, image: nil) }?
                .contains("needs to be an absolute path") == true)
    }

    @Test("the built spec carries args, env, cwd, terminal, hostname and oomScoreAdj")
    func builtProcess() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["echo", "hi"]
        request.tty = true
        request.domainname = "example.org"
        let spec = try SpecBuilder.build(
            specInputs(request, image: imageConfig(env: ["X=1"], workingDir: "/w"), rootfs: rootfs.path),
            host: specTestHost)
        #expect(spec.process?.args == ["echo", "hi"])
        #expect(
            spec.process?.env == ["PATH=\(ContainerProcess.defaultPath)", "HOSTNAME=0123456789ab", "TERM=xterm", "X=1"])
        #expect(spec.process?.cwd == "/w")
        #expect(spec.process?.terminal == true)
        #expect(spec.process?.oomScoreAdj == 0)
        #expect(spec.process?.noNewPrivileges == nil)
        #expect(spec.process?.rlimits == nil)
        #expect(spec.hostname == "0123456789ab")
        #expect(spec.domainname == "example.org")
        #expect(spec.root == Spec.Root(path: rootfs.path))
        #expect(spec.linux?.cgroupsPath == "/berth/0123456789abcdef")
    }

    @Test("--init runs docker-init first and mounts it read-only")
    func initProcess() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["sleep", "1"]
        request.initProcess = true
        #expect(
            invalidReason { _ = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost) }?
                .contains("init") == true)
        let spec = try SpecBuilder.build(
            specInputs(request, rootfs: rootfs.path) { $0.initPath = "/usr/libexec/tini" }, host: specTestHost)
        #expect(spec.process?.args == ["/sbin/docker-init", "--", "sleep", "1"])
        #expect(
            spec.mounts?.contains(
                Spec.Mount(
                    destination: "/sbin/docker-init", type: "bind", source: "/usr/libexec/tini",
                    options: ["bind", "ro"])) == true)
    }

    @Test("--ulimit becomes rlimits; -1 is infinity")
    func rlimits() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.ulimits = [.init(name: "nofile", soft: 1024, hard: 2048), .init(name: "core", soft: -1, hard: -1)]
        let spec = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        #expect(
            spec.process?.rlimits == [
                Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 2048, soft: 1024),
                Spec.Rlimit(type: "RLIMIT_CORE", hard: UInt64.max, soft: UInt64.max),
            ])
        request.ulimits = [.init(name: "bogus", soft: 1, hard: 1)]
        #expect(
            invalidReason { _ = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost) }
                == "invalid ulimit type: bogus")
    }
}

@Suite("Spec builder: capabilities and security options")
struct SpecCapabilityTests {
    @Test("docker's 14 default capabilities in bounding, effective and permitted only")
    func defaults() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        let caps = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost).process?
            .capabilities
        #expect(ContainerCapabilities.dockerDefault.count == 14)
        #expect(caps?.bounding == ContainerCapabilities.dockerDefault)
        #expect(caps?.effective == ContainerCapabilities.dockerDefault)
        #expect(caps?.permitted == ContainerCapabilities.dockerDefault)
        #expect(caps?.inheritable == nil)
        #expect(caps?.ambient == nil)
    }

    @Test("cap-add and cap-drop: case-insensitive, CAP_ optional, ALL")
    func tweaks() throws {
        func resolve(_ add: [String], _ drop: [String], last: Int = 40, own: UInt64? = nil) throws(EngineError)
            -> [String]
        {
            let host = HostFacts(
                lastCapability: last, ownCapabilities: own, unifiedCgroups: false, kernel: .init(6, 1),
                architecture: "amd64", cpuCount: 1)
            return try ContainerCapabilities.resolve(
                add: add, drop: drop, privileged: false, available: host.availableCapabilities)
        }
        let added = try resolve(["sys_admin", "CAP_NET_ADMIN"], ["chown", "Cap_Kill"])
        #expect(added.contains("CAP_SYS_ADMIN") && added.contains("CAP_NET_ADMIN"))
        #expect(!added.contains("CAP_CHOWN") && !added.contains("CAP_KILL"))
        #expect(added.count == 14)
        #expect(try resolve(["ALL"], []).count == 41)
        #expect(try resolve(["all"], ["NET_RAW"]).count == 40)
        #expect(try resolve(["ALL"], [], last: 37).count == 38)
        #expect(try resolve(["NET_ADMIN"], ["ALL"]) == ["CAP_NET_ADMIN"])
        #expect(try resolve([], ["ALL"]) == [])
        #expect(try resolve(["CHOWN"], []) == ContainerCapabilities.dockerDefault)
        #expect(invalidReason { _ = try resolve(["NOPE"], []) } == "unknown capability: \"CAP_NOPE\"")
        #expect(
            invalidReason { _ = try resolve(["BPF"], [], last: 37) }?.contains("not supported by your kernel") == true)
        // An engine without CAP_SYS_RESOURCE (bit 24) cannot grant it, even with ALL.
        let withoutResource: UInt64 = 0x1ff_feff_ffff
        #expect(try resolve(["ALL"], [], own: withoutResource).count == 40)
        #expect(!(try resolve(["ALL"], [], own: withoutResource).contains("CAP_SYS_RESOURCE")))
        #expect(
            invalidReason { _ = try resolve(["SYS_RESOURCE"], [], own: withoutResource) }?.contains(
                "not available in the current environment") == true)
        #expect(
            try ContainerCapabilities.resolve(
                add: ["NOPE"], drop: [], privileged: true, available: specTestHost.availableCapabilities
            ).count == 41)
    }

    @Test("--privileged: every capability, no seccomp, nothing masked, /sys and cgroups writable, host devices")
    func privileged() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.privileged = true
        let spec = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        #expect(spec.process?.capabilities?.bounding?.count == 41)
        #expect(spec.process?.capabilities?.bounding?.contains("CAP_SYS_ADMIN") == true)
        #expect(spec.linux?.seccomp == nil)
        #expect(spec.linux?.maskedPaths == nil)
        #expect(spec.linux?.readonlyPaths == nil)
        let sys = spec.mounts?.first { $0.destination == "/sys" }
        #expect(sys?.options?.contains("ro") == false)
        let cgroup = spec.mounts?.first { $0.destination == "/sys/fs/cgroup" }
        #expect(cgroup?.options?.contains("ro") == false)
        #expect(spec.linux?.resources?.devices == [Spec.DeviceRule(allow: true, access: "rwm")])
        #expect(
            spec.linux?.devices?.contains { $0.path == "/dev/null" && $0.type == "c" && $0.major == 1 && $0.minor == 3 }
                == true)
        #expect(spec.linux?.devices?.contains { $0.path.hasPrefix("/dev/pts/") } == false)
        #expect(spec.linux?.devices?.contains { $0.path == "/dev/console" } == false)
    }

    @Test("unprivileged: masked and read-only paths as docker's, /sys read-only")
    func unprivilegedPaths() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        let spec = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        #expect(spec.linux?.maskedPaths?.contains("/proc/kcore") == true)
        #expect(spec.linux?.maskedPaths?.contains("/proc/interrupts") == true)
        #expect(spec.linux?.maskedPaths?.contains("/sys/firmware") == true)
        #expect(
            spec.linux?.readonlyPaths == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        #expect(spec.mounts?.first { $0.destination == "/sys" }?.options?.contains("ro") == true)
        request.securityOpt = ["systempaths=unconfined"]
        let unconfined = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        #expect(unconfined.linux?.maskedPaths == nil)
    }

    @Test("security options: no-new-privileges forms, seccomp unconfined, apparmor and label")
    func securityOptions() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        func build() throws(EngineError) -> Spec {
            try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        }
        request.securityOpt = ["no-new-privileges"]
        #expect(try build().process?.noNewPrivileges == true)
        request.securityOpt = ["no-new-privileges=true", "no-new-privileges:false"]
        #expect(try build().process?.noNewPrivileges == nil)
        request.securityOpt = ["seccomp=unconfined", "apparmor=unconfined", "label=disable"]
        #expect(try build().linux?.seccomp == nil)
        request.securityOpt = ["apparmor=docker-default"]
        #expect(invalidReason { _ = try build() }?.contains("AppArmor is not available") == true)
        request.securityOpt = ["label=type:svirt_t"]
        #expect(invalidReason { _ = try build() }?.contains("SELinux is not available") == true)
        request.securityOpt = ["no-new-privileges=maybe"]
        #expect(invalidReason { _ = try build() } != nil)
        request.securityOpt = ["bogus=1"]
        #expect(invalidReason { _ = try build() }?.contains("unknown option bogus") == true)
        request.securityOpt = ["seccomp=/nonexistent/profile.json"]
        #expect(
            invalidReason { _ = try build() }?.contains("opening seccomp profile (/nonexistent/profile.json) failed")
                == true)
        request.securityOpt = ["writable-cgroups=true"]
        #expect(try build().mounts?.first { $0.type == "cgroup" }?.options?.contains("ro") == false)
    }
}

@Suite("Spec builder: namespaces, resources, sysctls")
struct SpecLinuxTests {
    func build(
        _ configure: (inout ContainerConfiguration) -> Void = { _ in }, host: HostFacts = specTestHost,
        inputs adjust: (inout SpecInputs) -> Void = { _ in }
    ) throws(EngineError) -> Spec {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        configure(&request)
        return try SpecBuilder.build(specInputs(request, rootfs: rootfs.path, configure: adjust), host: host)
    }

    @Test("namespaces: a new network namespace, a pinned one, none with the host's; cgroup only on v2")
    func namespaces() throws {
        #expect(try build().linux?.namespaces?.map(\.type) == ["mount", "network", "uts", "pid", "ipc"])
        let pinned = try build(inputs: { $0.networkNamespacePath = "/run/netns/c1" })
        #expect(pinned.linux?.namespaces?.first { $0.type == "network" }?.path == "/run/netns/c1")
        let hostNet = try build(inputs: { $0.sharesHostNetwork = true })
        #expect(hostNet.linux?.namespaces?.map(\.type) == ["mount", "uts", "pid", "ipc"])
        var v2 = specTestHost
        v2.unifiedCgroups = true
        #expect(try build(host: v2).linux?.namespaces?.last == Spec.Namespace(type: "cgroup"))
    }

    @Test("memory: limit, swap twice the limit by default, reservation, OOM killer; docker's bounds")
    func memory() throws {
        let memory = try build {
            $0.resources.memory = 512 << 20; $0.resources.memoryReservation = 256 << 20
        }.linux?.resources?.memory
        #expect(memory?.limit == 512 << 20)
        #expect(memory?.swap == 1024 << 20)
        #expect(memory?.reservation == 256 << 20)
        #expect(
            try build {
                $0.resources.memory = 64 << 20; $0.resources.memorySwap = -1
            }.linux?.resources?.memory?.swap == nil)
        #expect(try build { $0.resources.oomKillDisable = true }.linux?.resources?.memory?.disableOOMKiller == true)
        var noSwapAccounting = specTestHost
        noSwapAccounting.swapLimit = false
        let withoutSwap = try build(
            {
                $0.resources.memory = 64 << 20; $0.resources.memorySwap = 128 << 20
            }, host: noSwapAccounting)
        #expect(withoutSwap.linux?.resources?.memory?.limit == 64 << 20)
        #expect(withoutSwap.linux?.resources?.memory?.swap == nil)
        #expect(try build().linux?.resources?.memory == nil)
        #expect(
            invalidReason { _ = try build { $0.resources.memory = 1 << 20 } } == "Minimum memory limit allowed is 6MB")
        #expect(
            invalidReason {
                _ = try build {
                    $0.resources.memory = 64 << 20; $0.resources.memorySwap = 32 << 20
                }
            }?
            .contains("memoryswap limit should be larger") == true)
        #expect(
            invalidReason { _ = try build { $0.resources.memorySwap = 32 << 20 } }?.contains(
                "always set the Memory limit") == true)
        #expect(
            invalidReason {
                _ = try build {
                    $0.resources.memory = 64 << 20; $0.resources.memoryReservation = 128 << 20
                }
            } != nil)
    }

    @Test("cpu: --cpus as quota over a 100 ms period, shares, cpuset, conflicts and range")
    func cpu() throws {
        let cpu = try build {
            $0.resources.nanoCPUs = 1_500_000_000; $0.resources.cpuShares = 512; $0.resources.cpusetCpus = "0-1"
        }
        .linux?.resources?.cpu
        #expect(cpu?.quota == 150_000)
        #expect(cpu?.period == 100_000)
        #expect(cpu?.shares == 512)
        #expect(cpu?.cpus == "0-1")
        #expect(try build().linux?.resources?.cpu == nil)
        #expect(
            invalidReason { _ = try build { $0.resources.nanoCPUs = 3_000_000_000 } }
                == "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
        #expect(
            invalidReason {
                _ = try build {
                    $0.resources.nanoCPUs = 1_000_000_000; $0.resources.cpuQuota = 50_000
                }
            }?
            .contains("Conflicting options") == true)
        #expect(invalidReason { _ = try build { $0.resources.cpuPeriod = 10 } }?.contains("CPU cfs period") == true)
    }

    @Test("pids: a limit, or -1 for zero and less")
    func pids() throws {
        #expect(try build { $0.resources.pidsLimit = 100 }.linux?.resources?.pids == Spec.Pids(limit: 100))
        #expect(try build { $0.resources.pidsLimit = 0 }.linux?.resources?.pids == Spec.Pids(limit: -1))
        #expect(try build().linux?.resources?.pids == nil)
    }

    @Test("sysctls: docker's network defaults, namespaced ones allowed, net.* refused with the host network")
    func sysctls() throws {
        let own = try build {
            $0.sysctls = ["net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"]
        }
        #expect(own.linux?.sysctl?["net.ipv4.ping_group_range"] == "0 2147483647")
        #expect(own.linux?.sysctl?["net.ipv4.ip_unprivileged_port_start"] == "0")
        #expect(own.linux?.sysctl?["net.ipv4.ip_forward"] == "1")
        #expect(own.linux?.sysctl?["kernel.shmmax"] == "1000")
        let hostNet = try build(inputs: { $0.sharesHostNetwork = true })
        #expect(hostNet.linux?.sysctl == nil)
        #expect(
            invalidReason {
                _ = try build({ $0.sysctls = ["net.ipv4.ip_forward": "1"] }, inputs: { $0.sharesHostNetwork = true })
            }?
            .contains("host's network namespace") == true)
        #expect(
            invalidReason { _ = try build { $0.sysctls = ["kernel.hostname": "x"] } }
                == "sysctl 'kernel.hostname' is not allowed")
        let joined = try build(
            { $0.networkMode = "container:other" }, inputs: { $0.networkNamespacePath = "/proc/1/ns/net" })
        #expect(joined.linux?.sysctl == nil)
    }

    @Test("devices: docker's cgroup rules; --device adds the node and an allow rule with its permissions")
    func devices() throws {
        let plain = try build()
        #expect(plain.linux?.devices == [])
        #expect(plain.linux?.resources?.devices?.first == Spec.DeviceRule(allow: false, access: "rwm"))
        #expect(
            plain.linux?.resources?.devices?.contains(
                Spec.DeviceRule(allow: false, type: "c", major: 10, minor: 229, access: "rwm")) == true)
        #expect(plain.linux?.resources?.devices?.count == 8)
        let mapped = try build {
            $0.devices = [.init(pathOnHost: "/dev/null", pathInContainer: "/dev/mynull", cgroupPermissions: "rw")]
        }
        let device = try #require(mapped.linux?.devices?.first)
        #expect(device.path == "/dev/mynull")
        #expect(device.type == "c" && device.major == 1 && device.minor == 3)
        #expect(device.fileMode == 0o666)
        #expect(
            mapped.linux?.resources?.devices?.last
                == Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rw"))
        #expect(
            invalidReason {
                _ = try build { $0.devices = [.init(pathOnHost: "/dev/nonexistent-device", pathInContainer: "/dev/x")] }
            }?
            .contains("\"/dev/nonexistent-device\"") == true)
        #expect(
            invalidReason {
                _ = try build { $0.devices = [.init(pathOnHost: "/etc/hostname", pathInContainer: "/dev/x")] }
            }?
            .contains("not a device node") == true)
    }

    @Test("a directory given to --device adds every device under it")
    func deviceDirectory() throws {
        let devices = try ContainerDevices.fromPath("/dev", in: "/hostdev")
        #expect(devices.contains { $0.path == "/hostdev/null" && $0.major == 1 && $0.minor == 3 })
    }
}
