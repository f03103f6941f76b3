import BerthOS

/// Checks a decoded config.json for what decoding cannot: allowed values, absolute paths, consistency.
/// Every failure names the field, so `berth-runtime create` can say exactly what to fix.
public struct SpecValidator {
    public let spec: Spec
    public let bundle: String

    public init(spec: Spec, bundle: String) {
        self.spec = spec
        self.bundle = bundle
    }

    public static let namespaceTypes: Set<String> = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]

    public func validate() throws(RuntimeError) {
        guard !spec.ociVersion.isEmpty else { throw .invalidConfig(field: "ociVersion", reason: "must not be empty") }
        guard let root = spec.root else { throw .invalidConfig(field: "root", reason: "required field is missing") }
        guard !root.path.isEmpty else { throw .invalidConfig(field: "root.path", reason: "must not be empty") }
        let rootfs = rootfsPath
        guard FileSystem.isDirectory(rootfs) else {
            throw .invalidConfig(field: "root.path", reason: "rootfs \(rootfs) does not exist or is not a directory")
        }
        if let process = spec.process { try validate(process: process, field: "process") }
        try validateMounts()
        try validateLinux()
        try validateHooks()
    }

    public var rootfsPath: String { Self.rootfsPath(spec.root?.path, bundle: bundle) }

    /// `root.path`, absolute (relative paths are the bundle's).
    public static func rootfsPath(_ configured: String?, bundle: String) -> String {
        let path = configured ?? "rootfs"
        return path.hasPrefix("/") ? FileSystem.clean(path) : FileSystem.clean(FileSystem.join(bundle, path))
    }

    public func validate(process: Spec.Process, field: String) throws(RuntimeError) {
        guard let args = process.args, !args.isEmpty, !args[0].isEmpty else {
            throw .invalidConfig(field: "\(field).args", reason: "must contain at least the program to run")
        }
        guard process.cwd.hasPrefix("/") else {
            throw .invalidConfig(field: "\(field).cwd", reason: "must be an absolute path, got \"\(process.cwd)\"")
        }
        for (index, variable) in (process.env ?? []).enumerated() where !variable.contains("=") {
            throw .invalidConfig(field: "\(field).env[\(index)]", reason: "must be KEY=VALUE, got \"\(variable)\"")
        }
        if let adj = process.oomScoreAdj, adj < -1000 || adj > 1000 {
            throw .invalidConfig(field: "\(field).oomScoreAdj", reason: "must be between -1000 and 1000")
        }
    }

    func validateMounts() throws(RuntimeError) {
        for (index, mount) in (spec.mounts ?? []).enumerated() {
            let field = "mounts[\(index)]"
            guard mount.destination.hasPrefix("/") else {
                throw .invalidConfig(
                    field: "\(field).destination", reason: "must be an absolute path, got \"\(mount.destination)\"")
            }
            let options = mount.options ?? []
            let isBind = mount.type == "bind" || options.contains("bind") || options.contains("rbind")
            if isBind && (mount.source ?? "").isEmpty {
                throw .invalidConfig(field: "\(field).source", reason: "a bind mount needs a source")
            }
            if !isBind && (mount.type ?? "").isEmpty {
                throw .invalidConfig(field: "\(field).type", reason: "required for a mount that is not a bind mount")
            }
            for (optionIndex, option) in options.enumerated() {
                if case .failure(let reason) = MountOptions.check(option) {
                    throw .invalidConfig(field: "\(field).options[\(optionIndex)]", reason: reason)
                }
            }
        }
    }

    func validateLinux() throws(RuntimeError) {
        guard let linux = spec.linux else { return }
        var seen = Set<String>()
        for (index, namespace) in (linux.namespaces ?? []).enumerated() {
            let field = "linux.namespaces[\(index)]"
            guard Self.namespaceTypes.contains(namespace.type) else {
                throw .invalidConfig(field: "\(field).type", reason: "unknown namespace type \"\(namespace.type)\"")
            }
            guard seen.insert(namespace.type).inserted else {
                throw .invalidConfig(field: "\(field).type", reason: "namespace \"\(namespace.type)\" is listed twice")
            }
            if let path = namespace.path {
                guard path.hasPrefix("/") else {
                    throw .invalidConfig(field: "\(field).path", reason: "must be an absolute path, got \"\(path)\"")
                }
                guard FileSystem.exists(path) else {
                    throw .invalidConfig(field: "\(field).path", reason: "\(path) does not exist")
                }
            }
        }
        let hasUserNamespace = seen.contains("user")
        if !hasUserNamespace && (!(linux.uidMappings ?? []).isEmpty || !(linux.gidMappings ?? []).isEmpty) {
            throw .invalidConfig(field: "linux.uidMappings", reason: "id mappings need a user namespace")
        }
        if hasUserNamespace && (linux.namespaces ?? []).first(where: { $0.type == "user" })?.path == nil {
            if (linux.uidMappings ?? []).isEmpty {
                throw .invalidConfig(field: "linux.uidMappings", reason: "a new user namespace needs uid mappings")
            }
            if (linux.gidMappings ?? []).isEmpty {
                throw .invalidConfig(field: "linux.gidMappings", reason: "a new user namespace needs gid mappings")
            }
        }
        if linux.timeOffsets != nil && !seen.contains("time") {
            throw .invalidConfig(field: "linux.timeOffsets", reason: "time offsets need a time namespace")
        }
        for key in (linux.timeOffsets ?? [:]).keys where key != "monotonic" && key != "boottime" {
            throw .invalidConfig(
                field: "linux.timeOffsets.\(key)", reason: "only monotonic and boottime clocks have offsets")
        }
        if spec.hostname.map({ !$0.isEmpty }) == true && !seen.contains("uts") {
            throw .invalidConfig(field: "hostname", reason: "setting a hostname needs a new uts namespace")
        }
        if spec.domainname.map({ !$0.isEmpty }) == true && !seen.contains("uts") {
            throw .invalidConfig(field: "domainname", reason: "setting a domainname needs a new uts namespace")
        }
        if let propagation = linux.rootfsPropagation,
            !["", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"].contains(
                propagation)
        {
            throw .invalidConfig(field: "linux.rootfsPropagation", reason: "unknown propagation \"\(propagation)\"")
        }
        for (index, device) in (linux.devices ?? []).enumerated() {
            let field = "linux.devices[\(index)]"
            guard ["c", "b", "u", "p"].contains(device.type) else {
                throw .invalidConfig(field: "\(field).type", reason: "must be c, b, u or p, got \"\(device.type)\"")
            }
            guard device.path.hasPrefix("/dev/") || device.path.hasPrefix("/") else {
                throw .invalidConfig(field: "\(field).path", reason: "must be an absolute path")
            }
            if device.type != "p" && (device.major == nil || device.minor == nil) {
                throw .invalidConfig(
                    field: "\(field).major", reason: "character and block devices need major and minor")
            }
        }
        for (index, path) in (linux.maskedPaths ?? []).enumerated() where !path.hasPrefix("/") {
            throw .invalidConfig(
                field: "linux.maskedPaths[\(index)]", reason: "must be an absolute path, got \"\(path)\"")
        }
        for (index, path) in (linux.readonlyPaths ?? []).enumerated() where !path.hasPrefix("/") {
            throw .invalidConfig(
                field: "linux.readonlyPaths[\(index)]", reason: "must be an absolute path, got \"\(path)\"")
        }
        // Like runc: masking and read-only paths are mounts over /proc and /sys entries, kept from the
        // container only inside a mount namespace of its own.
        if !seen.contains("mount") && (!(linux.maskedPaths ?? []).isEmpty || !(linux.readonlyPaths ?? []).isEmpty) {
            let field = (linux.maskedPaths ?? []).isEmpty ? "linux.readonlyPaths" : "linux.maskedPaths"
            throw .invalidConfig(field: field, reason: "restricting /proc and /sys entries needs a mount namespace")
        }
        for key in (linux.sysctl ?? [:]).keys.sorted() {
            try validateSysctl(key, namespaces: seen)
        }
    }

    /// Like runc: only namespaced sysctls, and only when the container has the namespace they belong to.
    func validateSysctl(_ key: String, namespaces: Set<String>) throws(RuntimeError) {
        let field = "linux.sysctl.\(key)"
        let ipc: Set<String> = [
            "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
            "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
        ]
        if ipc.contains(key) || key.hasPrefix("fs.mqueue.") {
            if !namespaces.contains("ipc") { throw .invalidConfig(field: field, reason: "needs a new ipc namespace") }
            return
        }
        if key.hasPrefix("net.") {
            if !namespaces.contains("network") {
                throw .invalidConfig(field: field, reason: "needs a new network namespace")
            }
            return
        }
        if key == "kernel.hostname" || key == "kernel.domainname" {
            if !namespaces.contains("uts") { throw .invalidConfig(field: field, reason: "needs a new uts namespace") }
            return
        }
        throw .invalidConfig(field: field, reason: "not a namespaced sysctl; setting it would change the host")
    }

    func validateHooks() throws(RuntimeError) {
        guard let hooks = spec.hooks else { return }
        let lists: [(String, [Spec.Hook]?)] = [
            ("prestart", hooks.prestart), ("createRuntime", hooks.createRuntime),
            ("createContainer", hooks.createContainer), ("startContainer", hooks.startContainer),
            ("poststart", hooks.poststart), ("poststop", hooks.poststop),
        ]
        for (name, list) in lists {
            for (index, hook) in (list ?? []).enumerated() {
                guard hook.path.hasPrefix("/") else {
                    throw .invalidConfig(
                        field: "hooks.\(name)[\(index)].path", reason: "must be an absolute path, got \"\(hook.path)\"")
                }
                if let timeout = hook.timeout, timeout <= 0 {
                    throw .invalidConfig(field: "hooks.\(name)[\(index)].timeout", reason: "must be positive")
                }
            }
        }
    }
}
