#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import Testing
@testable import BerthRuntime

/// Starts `/bin/sh -c script` (posix_spawn: safe from the multithreaded test runner).
func spawnShell(_ script: String) -> pid_t {
    var pid: pid_t = 0
    var args: [UnsafeMutablePointer<CChar>?] = []
    for word in ["/bin/sh", "-c", script] { args.append(strdup(word)) }
    args.append(nil)
    defer { args.forEach { free($0) } }
    let result = posix_spawn(&pid, "/bin/sh", nil, nil, args, environ)
    precondition(result == 0, "posix_spawn failed: \(result)")
    return pid
}

/// waitpid: (exited code or nil, signal or nil).
func waitFor(_ pid: pid_t) -> (code: Int32?, signal: Int32?) {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    if berth_wait_status_exited(status) != 0 { return (berth_wait_status_exit_code(status), nil) }
    return (nil, berth_wait_status_signal(status))
}

private func readValue(_ path: String) -> String {
    ((try? FileSystem.readString(path)) ?? "<missing>").filter { $0 != "\n" }
}

/// The real file system with a mount table showing only the cgroup2 hierarchy, so this hybrid host's
/// /sys/fs/cgroup/unified is treated as a v2 host's /sys/fs/cgroup.
struct UnifiedOnlyFileSystem: CgroupFileSystem {
    let real = RealCgroupFileSystem()
    func makeDirectory(_ path: String) throws(SystemCallError) -> Bool { try real.makeDirectory(path) }
    func removeDirectory(_ path: String) throws(SystemCallError) { try real.removeDirectory(path) }
    func readFile(_ path: String) throws(SystemCallError) -> String { try real.readFile(path) }
    func writeFile(_ path: String, _ value: String) throws(SystemCallError) { try real.writeFile(path, value) }
    func subdirectories(_ path: String) throws(SystemCallError) -> [String] { try real.subdirectories(path) }
    func exists(_ path: String) -> Bool { real.exists(path) }
    func fileSystemType(_ path: String) throws(SystemCallError) -> Int { try real.fileSystemType(path) }
    func mountInfo() throws(SystemCallError) -> String {
        try real.mountInfo().split(separator: "\n").filter { $0.contains(" - cgroup2 ") }.joined(separator: "\n")
    }
    func ownCgroups() throws(SystemCallError) -> String { try real.ownCgroups() }
    func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor { try real.openDirectory(path) }
    func kill(pid: Int32, signal: Int32) throws(SystemCallError) { try real.kill(pid: pid, signal: signal) }
    func sleep(milliseconds: Int) { real.sleep(milliseconds: milliseconds) }
    func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError) {
        try real.attachDeviceProgram(instructions, directory: directory)
    }
}

private let hasV1 =
    FileSystem.exists("/sys/fs/cgroup/memory/cgroup.procs") && FileSystem.exists("/sys/fs/cgroup/pids/cgroup.procs")
private let unifiedMount: String? = {
    let mountInfo = (try? RealCgroupFileSystem().mountInfo()) ?? ""
    return CgroupHierarchies(mountInfo: mountInfo).unified?.mountPoint
}()

@Suite(.serialized) struct CgroupIntegrationTests {
    @Test(.enabled(if: identityRoot && hasV1, "needs real root and cgroup v1 hierarchies"))
    func v1CreateApplyJoinFreezeKillDestroy() throws {
        let name = "berth-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let manager = try Cgroups.manager(cgroupsPath: "/" + name, containerID: name)
        let state = manager.state
        #expect(state.version == 1)
        defer { try? manager.destroy() }
        try manager.create()
        let memory = state.paths["memory"]!, pids = state.paths["pids"]!, cpu = state.paths["cpu"]!
        var r = Spec.Resources()
        r.memory = Spec.Memory()
        r.memory!.limit = 64 << 20
        if FileSystem.exists(FileSystem.parent(of: memory) + "/memory.memsw.limit_in_bytes") {
            r.memory!.swap = 96 << 20
        }
        r.memory!.reservation = 32 << 20
        r.memory!.disableOOMKiller = true
        r.pids = Spec.Pids(limit: 50)
        r.cpu = Spec.CPU()
        r.cpu!.shares = 512
        r.cpu!.quota = 50_000
        r.cpu!.period = 100_000
        r.cpu!.cpus = "0"
        r.cpu!.mems = "0"
        r.devices = Cgroups.deviceRules([Spec.DeviceRule(allow: false, access: "rwm")], devices: nil)
        let warnings = try manager.apply(r)
        #expect(warnings.isEmpty)
        #expect(readValue(memory + "/memory.limit_in_bytes") == "67108864")
        #expect(readValue(memory + "/memory.soft_limit_in_bytes") == "33554432")
        #expect(readValue(memory + "/memory.oom_control").contains("oom_kill_disable 1"))
        #expect(readValue(pids + "/pids.max") == "50")
        #expect(readValue(cpu + "/cpu.shares") == "512")
        #expect(readValue(cpu + "/cpu.cfs_quota_us") == "50000")
        #expect(readValue(state.paths["cpuset"]! + "/cpuset.cpus") == "0")
        let devices = (try? FileSystem.readString(state.paths["devices"]! + "/devices.list")) ?? ""
        #expect(devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"))

        let child = spawnShell("exec sleep 30")
        try manager.add(pid: child)
        #expect(try manager.processes().contains(child))
        let ownCgroups = (try? FileSystem.readString("/proc/\(child)/cgroup")) ?? ""
        #expect(ownCgroups.contains("pids:/\(name)") && ownCgroups.contains("memory:/\(name)"))
        try manager.freeze()
        #expect(manager.isFrozen())
        try manager.thaw()
        #expect(!manager.isFrozen())
        try manager.killAll(signal: SIGKILL)
        #expect(waitFor(child).signal == SIGKILL)
        try manager.destroy()
        for directory in Set(state.paths.values) + [state.path].compactMap({ $0 }) {
            #expect(!FileSystem.exists(directory), "\(directory) left behind")
        }
    }

    @Test(.enabled(if: identityRoot && unifiedMount != nil, "needs real root and a cgroup2 mount"))
    func v2CreateJoinFreezeKillDestroyOnTheUnifiedHierarchy() throws {
        let name = "berth-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let manager = try Cgroups.manager(cgroupsPath: "/" + name, containerID: name, fs: UnifiedOnlyFileSystem())
        #expect(manager.state.version == 2)
        let path = manager.state.path!
        #expect(path == unifiedMount! + "/" + name)
        defer { try? manager.destroy() }
        try manager.create()
        #expect(FileSystem.isDirectory(path))
        var r = Spec.Resources()
        if readValue(unifiedMount! + "/cgroup.controllers").contains("hugetlb") {
            r.hugepageLimits = [Spec.HugepageLimit(pageSize: "2MB", limit: 4 << 20)]
        }
        r.unified = ["cgroup.max.descendants": "3"]
        try manager.apply(r)
        #expect(readValue(path + "/cgroup.max.descendants") == "3")
        if r.hugepageLimits != nil { #expect(readValue(path + "/hugetlb.2MB.max") == "4194304") }

        let clone = try manager.directoryForClone()
        #expect(clone != nil)
        if let clone { #expect(try FileSystemMagic.of(clone) == FileSystemMagic.cgroup2) }

        let child = spawnShell("exec sleep 30")
        try manager.add(pid: child)
        #expect(try manager.processes() == [child])
        try manager.freeze()
        #expect(manager.isFrozen())
        #expect(readValue("/proc/\(child)/status").contains("State:\tS"))  // frozen tasks sleep in the freezer
        try manager.thaw()
        #expect(!manager.isFrozen())
        #expect(FileSystem.exists(path + "/cgroup.kill"))
        try manager.killAll(signal: SIGKILL)
        #expect(waitFor(child).signal == SIGKILL)
        try manager.destroy()
        #expect(!FileSystem.exists(path))
    }

    @Test(.enabled(if: identityRoot && unifiedMount != nil, "needs real root and a cgroup2 mount"))
    func v2DeviceProgramDeniesWhatTheRulesDeny() throws {
        let name = "berth-test-dev-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let manager = try Cgroups.manager(cgroupsPath: "/" + name, containerID: name, fs: UnifiedOnlyFileSystem())
        defer { try? manager.destroy() }
        try manager.create()
        var r = Spec.Resources()
        r.devices =
            Cgroups.deviceRules([Spec.DeviceRule(allow: false, access: "rwm")], devices: nil)
            + [Spec.DeviceRule(allow: false, type: "c", major: 1, minor: 5, access: "r")]  // no reading /dev/zero
        try manager.apply(r)
        // The child waits until it has been moved into the cgroup, then tries the devices.
        let child = spawnShell(
            "sleep 0.5; head -c1 /dev/null || exit 3; head -c1 /dev/zero >/dev/null && exit 4; exit 0")
        try manager.add(pid: child)
        let status = waitFor(child)
        #expect(status.code == 0, "exit \(String(describing: status.code)) signal \(String(describing: status.signal))")
        try manager.destroy()
        #expect(!FileSystem.exists(manager.state.path!))
    }
}
