#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Builds the container's root filesystem inside its mount namespace: propagation, the mounts of
/// config.json, /dev, then pivot_root, masked and read-only paths.
///
/// Every mount target is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT) and mounted through
/// /proc/self/fd/N of the resolved descriptor, so a symlink in the image — or one swapped in while we
/// work (CVE-2021-30465) — cannot send a mount outside the rootfs.
struct RootfsSetup {
    let spec: Spec
    let rootfs: String
    let bundle: String
    /// Waited on before a cgroup mount (see InitProcess.CgroupGate); nil when the init already sits in its
    /// cgroups. Without a cgroup namespace the container's directories are bind-mounted as soon as they
    /// exist, before the init has moved into them.
    var cgroupGate: InitProcess.CgroupGate?
    /// No mount namespace of its own: the init works in the runtime's (HostMountNamespace), where the
    /// propagation of "/" is not the container's to change and the root is entered with chroot.
    var inRuntimeMountNamespace: Bool {
        NamespacePlan(spec.linux?.namespaces ?? []).usesRuntimeMountNamespace
    }

    // MARK: Before pivot_root

    func prepare() throws(RuntimeError) {
        try checkProc("/proc")
        if !inRuntimeMountNamespace {
            let propagation = RootfsSetup.propagationFlag(spec.linux?.rootfsPropagation) ?? UInt(MS_SLAVE | MS_REC)
            try mount(nil, "/", nil, propagation, nil)
        }
        // pivot_root needs the new root to be a mount point; in the runtime's mount namespace it is the one
        // mount that delete takes away, with everything mounted under it.
        try mount(rootfs, rootfs, nil, UInt(MS_BIND | MS_REC), nil)
        let root = try openRoot()
        for (index, entry) in (spec.mounts ?? []).enumerated() {
            do {
                try mountEntry(entry, root: root)
            } catch {
                throw .other("mounts[\(index)] (\(entry.destination)): \(error)")
            }
        }
        try Devices(spec: spec, root: root).create()
    }

    static func propagationFlag(_ name: String?) -> UInt? {
        guard let name, !name.isEmpty else { return nil }
        return MountOptions.propagationFlags[name]
    }

    func openRoot() throws(RuntimeError) -> Root {
        try RuntimeError.wrap("opening rootfs") { () throws(SystemCallError) in try Root(path: rootfs) }
    }

    func mountEntry(_ entry: Spec.Mount, root: Root) throws(RuntimeError) {
        let options = MountOptions(entry.options ?? [])
        let type = entry.type ?? ""
        if type == "cgroup" || type == "cgroup2" {
            var mounts = CgroupMounts(spec: spec, root: root, destination: entry.destination, options: options)
            if !mounts.hasNamespace {
                mounts.directories = try cgroupGate?.directories()
            } else {
                try cgroupGate?.pass()
            }
            return try mounts.mount()
        }
        if options.isBind || type == "bind" {
            return try bind(entry, options: options, root: root)
        }
        let target = try RuntimeError.wrap("mount target") { () throws(SystemCallError) in
            try root.makeDirectories(entry.destination)
        }
        if type == "proc" || type == "sysfs" {
            // Only a real directory may hold /proc or /sys (CVE-2019-16884 style redirections).
            try requireDirectory(target, entry.destination)
        }
        try mount(
            entry.source ?? type, target.procPath, type, options.flags & ~UInt(MS_REMOUNT),
            options.data.isEmpty ? nil : options.data.joined(separator: ","))
        try applyPropagation(options, destination: entry.destination, root: root)
    }

    func bind(_ entry: Spec.Mount, options: MountOptions, root: Root) throws(RuntimeError) {
        var source = entry.source ?? ""
        if !source.hasPrefix("/") { source = FileSystem.join(bundle, source) }
        var info = stat()
        guard stat(source, &info) == 0 else {
            throw .system(SystemCallError(call: "stat", errno: errno, subject: source), context: "bind mount source")
        }
        let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        let target = try RuntimeError.wrap("bind mount target") { () throws(SystemCallError) in
            isDirectory ? try root.makeDirectories(entry.destination) : try root.makeFile(entry.destination)
        }
        let recursive = options.isRecursiveBind || entry.type == "rbind"
        try mount(source, target.procPath, nil, UInt(MS_BIND) | (recursive ? UInt(MS_REC) : 0), nil)
        let remount = options.remountFlags
        if remount != 0 {
            // The new mount sits on top of `target`: reopen the path to reach it.
            let mounted = try reopen(entry.destination, root: root, directory: isDirectory)
            try remountBind(mounted.procPath, flags: remount)
        }
        try applyPropagation(options, destination: entry.destination, root: root)
    }

    func applyPropagation(_ options: MountOptions, destination: String, root: Root) throws(RuntimeError) {
        guard !options.propagation.isEmpty else { return }
        let mounted = try reopen(destination, root: root, directory: nil)
        for flag in options.propagation {
            try mount(nil, mounted.procPath, nil, flag, nil)
        }
    }

    func reopen(_ destination: String, root: Root, directory: Bool?) throws(RuntimeError) -> FileDescriptor {
        try RuntimeError.wrap("reopening \(destination)") { () throws(SystemCallError) in
            try root.open(destination, BERTH_O_PATH | (directory == true ? O_DIRECTORY : 0))
        }
    }

    /// A bind mount takes flags such as ro only on a remount. Flags the kernel locked on the source
    /// (in a user namespace) must be kept, or the remount fails with EPERM.
    func remountBind(_ target: String, flags: UInt) throws(RuntimeError) {
        let requested = UInt(MS_BIND | MS_REMOUNT) | flags
        if Glibc.mount(nil, target, nil, requested, nil) == 0 { return }
        let firstError = errno
        var info = statvfs()
        guard firstError == EPERM, statvfs(target, &info) == 0 else {
            throw .system(
                SystemCallError(call: "mount(MS_REMOUNT)", errno: firstError, subject: target),
                context: "remounting bind mount")
        }
        var locked: UInt = 0
        let flag = UInt(info.f_flag)
        if flag & UInt(BERTH_ST_NOSUID) != 0 { locked |= UInt(MS_NOSUID) }
        if flag & UInt(BERTH_ST_NODEV) != 0 { locked |= UInt(MS_NODEV) }
        if flag & UInt(BERTH_ST_NOEXEC) != 0 { locked |= UInt(MS_NOEXEC) }
        if flag & UInt(BERTH_ST_RDONLY) != 0 { locked |= UInt(MS_RDONLY) }
        try mount(nil, target, nil, requested | locked, nil)
    }

    func requireDirectory(_ fd: FileDescriptor, _ destination: String) throws(RuntimeError) {
        var info = stat()
        if fstat(fd.rawValue, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
            throw .other("\(destination) must be a directory in the rootfs")
        }
    }

    /// /proc must be procfs before the runtime trusts anything under it.
    func checkProc(_ path: String) throws(RuntimeError) {
        let magic = try RuntimeError.wrap("checking \(path)") { () throws(SystemCallError) in
            try FileSystemMagic.of(path: path)
        }
        if magic != FileSystemMagic.proc { throw .other("\(path) is not procfs; refusing to use it") }
    }

    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?)
        throws(RuntimeError)
    {
        try RuntimeError.wrap("") { () throws(SystemCallError) in
            try Mount.mount(source: source, target: target, type: type, flags: flags, data: data)
        }
    }

    // MARK: pivot_root

    /// pivot_root(".", ".") then detaching the old root, as runc does: no directory for the old root is
    /// needed inside the container.
    func pivot(noPivot: Bool) throws(RuntimeError) {
        try RuntimeError.wrap("switching root") { () throws(SystemCallError) in
            if inRuntimeMountNamespace {
                // pivot_root or a move onto "/" here would change the root of every process on the host.
                _ = try sys("chdir", rootfs) { chdir(rootfs) }
                _ = try sys("chroot", rootfs) { chroot(".") }
                _ = try sys("chdir", "/") { chdir("/") }
                return
            }
            if noPivot {
                _ = try sys("chdir", rootfs) { chdir(rootfs) }
                try Mount.mount(source: rootfs, target: "/", type: nil, flags: UInt(MS_MOVE), data: nil)
                _ = try sys("chroot", rootfs) { chroot(".") }
                _ = try sys("chdir", "/") { chdir("/") }
                return
            }
            let oldRoot = try FileDescriptor.open("/", O_DIRECTORY | O_RDONLY)
            let newRoot = try FileDescriptor.open(rootfs, O_DIRECTORY | O_RDONLY)
            _ = try sys("fchdir", rootfs) { fchdir(newRoot.rawValue) }
            _ = try sys("pivot_root", rootfs) { berth_pivot_root(".", ".") }
            _ = try sys("fchdir", "old root") { fchdir(oldRoot.rawValue) }
            try Mount.mount(source: nil, target: ".", type: nil, flags: UInt(MS_SLAVE | MS_REC), data: nil)
            try Mount.unmount(".", flags: Int32(MNT_DETACH))
            _ = try sys("chdir", "/") { chdir("/") }
        }
    }

    // MARK: After pivot_root

    func finish() throws(RuntimeError) {
        let root = try RuntimeError.wrap("opening new root") { () throws(SystemCallError) in try Root(path: "/") }
        for path in spec.linux?.readonlyPaths ?? [] {
            try readonly(path, root: root)
        }
        for path in spec.linux?.maskedPaths ?? [] {
            try mask(path, root: root)
        }
        if spec.root?.readonly == true {
            try remountBind("/", flags: UInt(MS_RDONLY | MS_REC))
        }
    }

    func readonly(_ path: String, root: Root) throws(RuntimeError) {
        guard let fd = try openIfExists(path, root: root) else { return }
        try mount(fd.procPath, fd.procPath, nil, UInt(MS_BIND | MS_REC), nil)
        let mounted = try reopen(path, root: root, directory: nil)
        try remountBind(mounted.procPath, flags: UInt(MS_RDONLY | MS_REC))
    }

    func mask(_ path: String, root: Root) throws(RuntimeError) {
        guard let fd = try openIfExists(path, root: root) else { return }
        var info = stat()
        fstat(fd.rawValue, &info)
        if (info.st_mode & S_IFMT) == S_IFDIR {
            try mount("tmpfs", fd.procPath, "tmpfs", UInt(MS_RDONLY), nil)
        } else {
            try Devices.checkNull()
            try mount("/dev/null", fd.procPath, nil, UInt(MS_BIND), nil)
        }
    }

    func openIfExists(_ path: String, root: Root) throws(RuntimeError) -> FileDescriptor? {
        do {
            return try root.open(path, BERTH_O_PATH)
        } catch {
            if error.errno == ENOENT { return nil }
            throw .system(error, context: "resolving \(path)")
        }
    }
}
