/// The OCI runtime specification's config.json (runtime-spec 1.2), as Codable values.
///
/// Field names match the JSON exactly. Optional fields stay optional so that a round trip keeps what
/// the user wrote; defaults are applied where the runtime plans, not here.
public struct Spec: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init(
        ociVersion: String, process: Process? = nil, root: Root? = nil, hostname: String? = nil,
        domainname: String? = nil, mounts: [Mount]? = nil, hooks: Hooks? = nil,
        annotations: [String: String]? = nil, linux: Linux? = nil
    ) {
        self.ociVersion = ociVersion
        self.process = process
        self.root = root
        self.hostname = hostname
        self.domainname = domainname
        self.mounts = mounts
        self.hooks = hooks
        self.annotations = annotations
        self.linux = linux
    }

    public struct Process: Codable, Sendable, Equatable {
        public var terminal: Bool?
        public var consoleSize: ConsoleSize?
        public var user: User
        public var args: [String]?
        public var commandLine: String?
        public var env: [String]?
        public var cwd: String
        public var capabilities: Capabilities?
        public var rlimits: [Rlimit]?
        public var noNewPrivileges: Bool?
        public var apparmorProfile: String?
        public var oomScoreAdj: Int?
        public var selinuxLabel: String?
        public var ioPriority: IOPriority?
        public var scheduler: Scheduler?

        public init(user: User = User(uid: 0, gid: 0), args: [String], env: [String]? = nil, cwd: String = "/") {
            self.user = user
            self.args = args
            self.env = env
            self.cwd = cwd
        }
    }

    public struct ConsoleSize: Codable, Sendable, Equatable {
        public var height: UInt16
        public var width: UInt16
        public init(height: UInt16, width: UInt16) { self.height = height; self.width = width }
    }

    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var umask: UInt32?
        public var additionalGids: [UInt32]?
        public var username: String?

        public init(uid: UInt32, gid: UInt32, umask: UInt32? = nil, additionalGids: [UInt32]? = nil) {
            self.uid = uid
            self.gid = gid
            self.umask = umask
            self.additionalGids = additionalGids
        }
    }

    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]?
        public var effective: [String]?
        public var inheritable: [String]?
        public var permitted: [String]?
        public var ambient: [String]?

        public init(
            bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
            permitted: [String]? = nil, ambient: [String]? = nil
        ) {
            self.bounding = bounding
            self.effective = effective
            self.inheritable = inheritable
            self.permitted = permitted
            self.ambient = ambient
        }
    }

    public struct Rlimit: Codable, Sendable, Equatable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
        public init(type: String, hard: UInt64, soft: UInt64) {
            self.type = type
            self.hard = hard
            self.soft = soft
        }
    }

    public struct IOPriority: Codable, Sendable, Equatable {
        public var `class`: String
        public var priority: Int?
    }

    public struct Scheduler: Codable, Sendable, Equatable {
        public var policy: String
        public var nice: Int32?
        public var priority: Int32?
        public var flags: [String]?
        public var runtime: UInt64?
        public var deadline: UInt64?
        public var period: UInt64?
    }

    public struct Root: Codable, Sendable, Equatable {
        public var path: String
        public var readonly: Bool?
        public init(path: String, readonly: Bool? = nil) {
            self.path = path
            self.readonly = readonly
        }
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?

        public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }

    public struct Hooks: Codable, Sendable, Equatable {
        public var prestart: [Hook]?
        public var createRuntime: [Hook]?
        public var createContainer: [Hook]?
        public var startContainer: [Hook]?
        public var poststart: [Hook]?
        public var poststop: [Hook]?
        public init() {}
    }

    public struct Hook: Codable, Sendable, Equatable {
        public var path: String
        public var args: [String]?
        public var env: [String]?
        public var timeout: Int?
        public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
            self.path = path
            self.args = args
            self.env = env
            self.timeout = timeout
        }
    }

    public struct IDMapping: Codable, Sendable, Equatable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var size: UInt32
        public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
            self.containerID = containerID
            self.hostID = hostID
            self.size = size
        }
    }

    public struct Linux: Codable, Sendable, Equatable {
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var sysctl: [String: String]?
        public var resources: Resources?
        public var cgroupsPath: String?
        public var namespaces: [Namespace]?
        public var devices: [Device]?
        public var seccomp: Seccomp?
        public var rootfsPropagation: String?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        public var mountLabel: String?
        public var personality: Personality?
        public var timeOffsets: [String: TimeOffset]?
        public init() {}
    }

    public struct Namespace: Codable, Sendable, Equatable {
        public var type: String
        public var path: String?
        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    public struct Device: Codable, Sendable, Equatable {
        public var type: String
        public var path: String
        public var major: Int64?
        public var minor: Int64?
        public var fileMode: UInt32?
        public var uid: UInt32?
        public var gid: UInt32?
        public init(
            type: String, path: String, major: Int64? = nil, minor: Int64? = nil, fileMode: UInt32? = nil,
            uid: UInt32? = nil, gid: UInt32? = nil
        ) {
            self.type = type; self.path = path; self.major = major; self.minor = minor
            self.fileMode = fileMode; self.uid = uid; self.gid = gid
        }
    }

    public struct Personality: Codable, Sendable, Equatable {
        public var domain: String
        public var flags: [String]?
        public init(domain: String, flags: [String]? = nil) { self.domain = domain; self.flags = flags }
    }

    public struct TimeOffset: Codable, Sendable, Equatable {
        public var secs: Int64?
        public var nanosecs: UInt32?
        public init(secs: Int64? = nil, nanosecs: UInt32? = nil) { self.secs = secs; self.nanosecs = nanosecs }
    }

    // MARK: Resources (cgroups)

    public struct Resources: Codable, Sendable, Equatable {
        public var devices: [DeviceRule]?
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public var blockIO: BlockIO?
        public var hugepageLimits: [HugepageLimit]?
        public var network: Network?
        public var rdma: [String: RdmaLimit]?
        public var unified: [String: String]?
        public init() {}
    }

    public struct DeviceRule: Codable, Sendable, Equatable {
        public var allow: Bool
        public var type: String?
        public var major: Int64?
        public var minor: Int64?
        public var access: String?
        public init(allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil, access: String? = nil) {
            self.allow = allow
            self.type = type
            self.major = major
            self.minor = minor
            self.access = access
        }
    }

    public struct Memory: Codable, Sendable, Equatable {
        public var limit: Int64?
        public var reservation: Int64?
        public var swap: Int64?
        public var kernel: Int64?
        public var kernelTCP: Int64?
        public var swappiness: UInt64?
        public var disableOOMKiller: Bool?
        public var useHierarchy: Bool?
        public var checkBeforeUpdate: Bool?
        public init() {}
    }

    public struct CPU: Codable, Sendable, Equatable {
        public var shares: UInt64?
        public var quota: Int64?
        public var burst: UInt64?
        public var period: UInt64?
        public var realtimeRuntime: Int64?
        public var realtimePeriod: UInt64?
        public var cpus: String?
        public var mems: String?
        public var idle: Int64?
        public init() {}
    }

    public struct Pids: Codable, Sendable, Equatable {
        public var limit: Int64
        public init(limit: Int64) { self.limit = limit }
    }

    public struct BlockIO: Codable, Sendable, Equatable {
        public var weight: UInt16?
        public var leafWeight: UInt16?
        public var weightDevice: [WeightDevice]?
        public var throttleReadBpsDevice: [ThrottleDevice]?
        public var throttleWriteBpsDevice: [ThrottleDevice]?
        public var throttleReadIOPSDevice: [ThrottleDevice]?
        public var throttleWriteIOPSDevice: [ThrottleDevice]?
        public init() {}
    }

    public struct WeightDevice: Codable, Sendable, Equatable {
        public var major: Int64
        public var minor: Int64
        public var weight: UInt16?
        public var leafWeight: UInt16?
        public init(major: Int64, minor: Int64, weight: UInt16? = nil, leafWeight: UInt16? = nil) {
            self.major = major; self.minor = minor; self.weight = weight; self.leafWeight = leafWeight
        }
    }

    public struct ThrottleDevice: Codable, Sendable, Equatable {
        public var major: Int64
        public var minor: Int64
        public var rate: UInt64
        public init(major: Int64, minor: Int64, rate: UInt64) {
            self.major = major; self.minor = minor; self.rate = rate
        }
    }

    public struct HugepageLimit: Codable, Sendable, Equatable {
        public var pageSize: String
        public var limit: UInt64
        public init(pageSize: String, limit: UInt64) { self.pageSize = pageSize; self.limit = limit }
    }

    public struct Network: Codable, Sendable, Equatable {
        public var classID: UInt32?
        public var priorities: [InterfacePriority]?
        public init(classID: UInt32? = nil, priorities: [InterfacePriority]? = nil) {
            self.classID = classID; self.priorities = priorities
        }
    }

    public struct InterfacePriority: Codable, Sendable, Equatable {
        public var name: String
        public var priority: UInt32
        public init(name: String, priority: UInt32) { self.name = name; self.priority = priority }
    }

    public struct RdmaLimit: Codable, Sendable, Equatable {
        public var hcaHandles: UInt32?
        public var hcaObjects: UInt32?
        public init(hcaHandles: UInt32? = nil, hcaObjects: UInt32? = nil) {
            self.hcaHandles = hcaHandles; self.hcaObjects = hcaObjects
        }
    }

    // MARK: Seccomp

    public struct Seccomp: Codable, Sendable, Equatable {
        public var defaultAction: String
        public var defaultErrnoRet: UInt32?
        public var architectures: [String]?
        public var flags: [String]?
        public var listenerPath: String?
        public var listenerMetadata: String?
        public var syscalls: [Syscall]?
        public init(defaultAction: String) { self.defaultAction = defaultAction }
    }

    public struct Syscall: Codable, Sendable, Equatable {
        public var names: [String]
        public var action: String
        public var errnoRet: UInt32?
        public var args: [SyscallArg]?
        public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [SyscallArg]? = nil) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
        }
    }

    public struct SyscallArg: Codable, Sendable, Equatable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64?
        public var op: String
        public init(index: UInt32, value: UInt64, valueTwo: UInt64? = nil, op: String) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }
    }
}
