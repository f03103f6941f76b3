#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthImage
import BerthOS

/// `/_ping`, `/version`, `/info`: what a client asks first, to negotiate the API version and learn
/// what it talks to.
extension DockerAPI {
    func ping(_ response: ResponseWriter) {
        response.send(
            .ok, contentType: "text/plain; charset=utf-8",
            headers: [
                ("Builder-Version", "1"), ("Swarm", "inactive"),
                ("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"),
            ],
            body: Array("OK".utf8))
    }

    struct VersionResponse: Encodable {
        struct Component: Encodable {
            var Name: String
            var Version: String
            var Details: [String: String]
        }
        var Platform: [String: String]
        var Components: [Component]
        var Version: String
        var ApiVersion: String
        var MinAPIVersion: String
        var GitCommit: String
        var GoVersion: String
        var Os: String
        var Arch: String
        var KernelVersion: String
        var BuildTime: String
    }

    func version(_ response: ResponseWriter) {
        let host = HostInfo.current
        let details = [
            "ApiVersion": Self.apiVersion, "MinAPIVersion": Self.minimumAPIVersion, "Arch": host.goArchitecture,
            "Os": "linux", "KernelVersion": host.kernel, "Experimental": "false", "GitCommit": "", "GoVersion": "",
            "BuildTime": "",
        ]
        response.json(
            VersionResponse(
                Platform: ["Name": "Berth Engine"],
                Components: [.init(Name: "Engine", Version: Self.engineVersion, Details: details)],
                Version: Self.engineVersion, ApiVersion: Self.apiVersion, MinAPIVersion: Self.minimumAPIVersion,
                GitCommit: "", GoVersion: "", Os: "linux", Arch: host.goArchitecture, KernelVersion: host.kernel,
                BuildTime: ""))
    }

    /// The subset of docker's SystemInfo that Berth can answer truthfully.
    struct InfoResponse: Encodable {
        var ID: String
        var Containers: Int
        var ContainersRunning: Int
        var ContainersPaused: Int
        var ContainersStopped: Int
        var Images: Int
        var Driver: String
        var DriverStatus: [[String]] = []
        var DockerRootDir: String
        var Plugins: [String: [String]]
        var MemoryLimit = true
        var SwapLimit = true
        var CpuCfsPeriod = true
        var CpuCfsQuota = true
        var CPUShares = true
        var CPUSet = true
        var PidsLimit = true
        var IPv4Forwarding = true
        var Debug = false
        var NFd: Int
        var NGoroutines = 0
        var SystemTime: String
        var LoggingDriver: String
        var CgroupDriver = "cgroupfs"
        var CgroupVersion: String
        var NEventsListener = 0
        var KernelVersion: String
        var OperatingSystem: String
        var OSVersion: String
        var OSType = "linux"
        var Architecture: String
        var IndexServerAddress = "https://index.docker.io/v1/"
        var RegistryConfig: RegistryConfig
        var NCPU: Int
        var MemTotal: Int64
        var Name: String
        var Labels: [String] = []
        var ExperimentalBuild = false
        var ServerVersion: String
        var Runtimes: [String: [String: String]]
        var DefaultRuntime: String
        var Swarm = SwarmSection()
        var LiveRestoreEnabled = true
        var Isolation = ""
        var InitBinary = "docker-init"
        var SecurityOptions: [String]
        var Warnings: [String] = []

        struct SwarmSection: Encodable {
            var NodeID = ""
            var NodeAddr = ""
            var LocalNodeState = "inactive"
            var ControlAvailable = false
            var Error = ""

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(NodeID, forKey: .NodeID)
                try c.encode(NodeAddr, forKey: .NodeAddr)
                try c.encode(LocalNodeState, forKey: .LocalNodeState)
                try c.encode(ControlAvailable, forKey: .ControlAvailable)
                try c.encode(Error, forKey: .Error)
                try c.encodeNil(forKey: .RemoteManagers)
            }
            enum Keys: String, CodingKey {
                case NodeID, NodeAddr, LocalNodeState, ControlAvailable, Error, RemoteManagers
            }
        }

        struct RegistryConfig: Encodable {
            var InsecureRegistryCIDRs: [String] = ["127.0.0.0/8", "::1/128"]
            var IndexConfigs: [String: IndexConfig]
            var Mirrors: [String]
        }

        struct IndexConfig: Encodable {
            var Name: String
            var Mirrors: [String]
            var Secure: Bool
            var Official: Bool
        }
    }

    func info(_ response: ResponseWriter) throws {
        let host = HostInfo.current
        let containers = engine.list()
        var runtimes: [String: [String: String]] = [:]
        for name in ["berth", "runc", "crun"] + engine.configuration.runtimes.keys.sorted() {
            if let runtime = try? OCIRuntime(name: name, layout: engine.layout, named: engine.configuration.runtimes) {
                runtimes[name] = ["path": runtime.path]
            }
        }
        let v2 = (try? FileSystemMagic.of(path: "/sys/fs/cgroup")) == FileSystemMagic.cgroup2
        var indexConfigs = [
            "docker.io": InfoResponse.IndexConfig(
                Name: "docker.io", Mirrors: engine.configuration.registryMirrors,
                Secure: true, Official: true)
        ]
        for registry in engine.configuration.insecureRegistries {
            indexConfigs[registry] = .init(Name: registry, Mirrors: [], Secure: false, Official: false)
        }
        let fds = (try? FileSystem.listDirectory("/proc/self/fd").count) ?? 0
        response.json(
            InfoResponse(
                ID: host.machineID, Containers: containers.count,
                ContainersRunning: containers.filter { $0.state.status == .running }.count,
                ContainersPaused: containers.filter { $0.state.status == .paused }.count,
                ContainersStopped: containers.filter { !$0.state.running }.count,
                Images: engine.images.store.images().count,
                Driver: Snapshotter.preferred == .overlay ? "overlay2" : "vfs", DockerRootDir: engine.layout.root,
                Plugins: [
                    "Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file", "none", "cri"],
                ],
                NFd: fds, SystemTime: Timestamp.now(), LoggingDriver: engine.configuration.logDriver ?? "json-file",
                CgroupVersion: v2 ? "2" : "1", KernelVersion: host.kernel, OperatingSystem: host.operatingSystem,
                OSVersion: host.operatingSystemVersion, Architecture: host.machine,
                RegistryConfig: .init(IndexConfigs: indexConfigs, Mirrors: engine.configuration.registryMirrors),
                NCPU: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                MemTotal: Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))),
                Name: host.hostname, ServerVersion: Self.engineVersion, Runtimes: runtimes,
                DefaultRuntime: engine.configuration.defaultRuntime ?? "berth",
                SecurityOptions: ["name=seccomp,profile=builtin"] + (v2 ? ["name=cgroupns"] : [])))
    }
}

/// What `uname` and /etc/os-release say about this host.
struct HostInfo {
    var kernel: String
    var machine: String
    var hostname: String
    var operatingSystem: String
    var operatingSystemVersion: String
    var machineID: String

    /// Go's name for the architecture (`amd64`, `arm64`), as docker reports Arch.
    var goArchitecture: String {
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "i686", "i386": return "386"
        case "armv7l": return "arm"
        default: return machine
        }
    }

    static var current: HostInfo {
        var uts = utsname()
        uname(&uts)
        func text<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let release = (try? FileSystem.readString("/etc/os-release")) ?? ""
        func field(_ key: String) -> String? {
            release.split(separator: "\n").first { $0.hasPrefix(key + "=") }
                .map { String($0.dropFirst(key.count + 1)).trimmingCharacters(in: "\"") }
        }
        let machineID = ((try? FileSystem.readString("/etc/machine-id")) ?? "").trimmingSpaces
        return HostInfo(
            kernel: text(uts.release), machine: text(uts.machine), hostname: text(uts.nodename),
            operatingSystem: field("PRETTY_NAME") ?? "Linux", operatingSystemVersion: field("VERSION_ID") ?? "",
            machineID: machineID.isEmpty ? "unknown" : machineID)
    }
}
