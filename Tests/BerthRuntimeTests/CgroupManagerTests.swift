#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing
@testable import BerthRuntime

@Suite struct CgroupManagerTests {
    @Test func hierarchiesAreReadFromTheMountTable() {
        let hybrid = CgroupHierarchies(mountInfo: hybridMountInfo)
        #expect(hybrid.v1["cpu"]?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(hybrid.v1["cpuacct"] == hybrid.v1["cpu"])
        #expect(hybrid.v1["name=systemd"]?.mountPoint == "/sys/fs/cgroup/systemd")
        #expect(hybrid.unified?.mountPoint == "/sys/fs/cgroup/unified")
        #expect(!hybrid.isUnifiedOnly)
        let unified = CgroupHierarchies(mountInfo: unifiedMountInfo)
        #expect(unified.isUnifiedOnly && unified.unified?.mountPoint == "/sys/fs/cgroup")
        let escaped = CgroupHierarchies(mountInfo: "41 31 0:38 / /tmp/my\\040cgroup rw - cgroup2 cgroup2 rw")
        #expect(escaped.unified?.mountPoint == "/tmp/my cgroup")
    }

    @Test func standardHierarchiesAreFoundWithoutTheMountTable() {
        let types: [String: Int] = [
            "/sys/fs/cgroup": FileSystemMagic.tmpfs, "/sys/fs/cgroup/cpu,cpuacct": FileSystemMagic.cgroup,
            "/sys/fs/cgroup/memory": FileSystemMagic.cgroup, "/sys/fs/cgroup/systemd": FileSystemMagic.cgroup,
            "/sys/fs/cgroup/unified": FileSystemMagic.cgroup2,
        ]
        let own = "9:name=systemd:/\n4:memory:/a\n1:cpu,cpuacct:/\n0::/\n"
        let hybrid = CgroupHierarchies.standard(ownCgroups: own) { types[$0] }
        let listed = hybridMountInfo.split(separator: "\n").filter {
            $0.contains("cgroup2") || $0.contains(",memory") || $0.contains(",cpu,") || $0.contains("systemd")
        }
        #expect(hybrid == CgroupHierarchies(mountInfo: listed.joined(separator: "\n")), "as the mount table has them")
        #expect(hybrid?.v1["cpuacct"]?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(hybrid?.v1["name=systemd"]?.mountPoint == "/sys/fs/cgroup/systemd")
        #expect(hybrid?.unified?.mountPoint == "/sys/fs/cgroup/unified")

        let unified = CgroupHierarchies.standard(ownCgroups: "0::/user.slice\n") {
            $0 == "/sys/fs/cgroup" ? FileSystemMagic.cgroup2 : nil
        }
        #expect(unified == CgroupHierarchies(mountInfo: unifiedMountInfo))

        // v1 without the hybrid cgroup2 mount.
        var withoutUnified = types
        withoutUnified["/sys/fs/cgroup/unified"] = nil
        #expect(CgroupHierarchies.standard(ownCgroups: own) { withoutUnified[$0] }?.unified == nil)
        // Anything elsewhere (memory mounted at /cgroup/memory, a tmpfs where cgroup2 should be): the
        // mount table decides.
        var elsewhere = types
        elsewhere["/sys/fs/cgroup/memory"] = nil
        #expect(CgroupHierarchies.standard(ownCgroups: own) { elsewhere[$0] } == nil)
        elsewhere = types
        elsewhere["/sys/fs/cgroup/unified"] = FileSystemMagic.tmpfs
        #expect(CgroupHierarchies.standard(ownCgroups: own) { elsewhere[$0] } == nil)
        #expect(CgroupHierarchies.standard(ownCgroups: "0::/\n") { _ in FileSystemMagic.tmpfs } == nil)
        #expect(CgroupHierarchies.standard(ownCgroups: "garbage\n") { types[$0] } == nil)
    }

    @Test(.enabled(if: FileSystem.exists("/proc/self/cgroup")))
    func thisHostsStandardHierarchiesAreItsMountTables() throws {
        let fs = RealCgroupFileSystem()
        let table = CgroupHierarchies(mountInfo: try fs.mountInfo())
        guard let standard = fs.standardHierarchies() else {
            Issue.record("this host's cgroups are where systemd mounts them, and were not found there")
            return
        }
        #expect(standard.unified?.mountPoint == table.unified?.mountPoint)
        #expect(standard.v1.mapValues(\.mountPoint) == table.v1.mapValues(\.mountPoint))
        let cgroups = try fs.ownCgroups()
        let fast = CgroupMounts.standardHierarchies(cgroups: cgroups) { try? FileSystemMagic.of(path: $0) }
        let slow = CgroupMounts.hierarchies(mountinfo: try fs.mountInfo(), cgroups: cgroups)
        #expect(fast.map { Set($0.map(\.mountPoint)) } == Set(slow.map(\.mountPoint)))
        #expect(fast.map { Set($0.map(\.path)) } == Set(slow.map(\.path)))
    }

    @Test func defaultPathIsBerthSlashIDInEveryHierarchy() throws {
        let fs = cgroupFake(hybridMountInfo, ownCgroup: "4:memory:/elsewhere\n0::/\n")
        let manager = try Cgroups.manager(cgroupsPath: nil, containerID: "c1", fs: fs)
        let state = manager.state
        #expect(state.version == 1)
        #expect(state.paths["memory"] == "/sys/fs/cgroup/memory/berth/c1")
        #expect(state.paths["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/berth/c1")
        #expect(state.paths["name=systemd"] == "/sys/fs/cgroup/systemd/berth/c1")
        #expect(state.path == "/sys/fs/cgroup/unified/berth/c1")
    }

    @Test func relativePathIsBelowTheCallersCgroupAndAbsoluteBelowTheRoot() throws {
        let fs = cgroupFake(hybridMountInfo, ownCgroup: "4:memory:/process_api/abc\n3:cpuset:/\n0::/user.slice\n")
        let relative = try Cgroups.manager(cgroupsPath: "pods/c2", containerID: "c2", fs: fs).state
        #expect(relative.paths["memory"] == "/sys/fs/cgroup/memory/process_api/abc/pods/c2")
        #expect(relative.paths["cpuset"] == "/sys/fs/cgroup/cpuset/pods/c2")
        #expect(relative.path == "/sys/fs/cgroup/unified/user.slice/pods/c2")
        let absolute = try Cgroups.manager(cgroupsPath: "/a/b", containerID: "c2", fs: fs).state
        #expect(absolute.paths["memory"] == "/sys/fs/cgroup/memory/a/b")
        let v2 = try Cgroups.manager(cgroupsPath: "/a/../b", containerID: "x", fs: cgroupFake(unifiedMountInfo)).state
        #expect(v2.version == 2 && v2.path == "/sys/fs/cgroup/b" && v2.paths.isEmpty)
    }

    @Test func badCgroupsPathsAreRefused() {
        let fs = cgroupFake(unifiedMountInfo, ownCgroup: "0::/a\n")
        var unsupported = false
        do { _ = try Cgroups.manager(cgroupsPath: "system.slice:berth:c1", containerID: "c1", fs: fs) } catch {
            if case .unsupported(let message) = error { unsupported = message.contains("systemd") }
        }
        #expect(unsupported)
        #expect(invalidField { _ = try Cgroups.manager(cgroupsPath: "../../../../x", containerID: "c", fs: fs) } == nil)
        #expect(
            invalidField { _ = try Cgroups.manager(cgroupsPath: "/", containerID: "c", fs: fs) } == "linux.cgroupsPath")
        let fs2 = cgroupFake(unifiedMountInfo, ownCgroup: "0::/\n")
        // Relative to the root cgroup, ".." cannot climb above the mount: cleaned back to /x.
        #expect(
            (try? Cgroups.manager(cgroupsPath: "../x", containerID: "c", fs: fs2))?.state.path == "/sys/fs/cgroup/x")
    }

    @Test func v2CreateEnablesControllersInEveryAncestor() throws {
        let fs = cgroupFake(unifiedMountInfo)
        fs.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory pids\n"
        fs.files["/sys/fs/cgroup/cgroup.subtree_control"] = "cpu memory\n"
        let manager = try Cgroups.manager(cgroupsPath: nil, containerID: "c3", fs: fs)
        fs.files["/sys/fs/cgroup/berth/cgroup.controllers"] = "cpuset cpu io memory pids\n"
        // The kernel fills a new directory's interface files; the fake needs them before mkdir of the child.
        try manager.create()
        #expect(fs.values("/sys/fs/cgroup/cgroup.subtree_control") == ["+cpuset +io +pids"])
        #expect(fs.values("/sys/fs/cgroup/berth/cgroup.subtree_control") == ["+cpuset +cpu +io +memory +pids"])
        #expect(fs.directories.contains("/sys/fs/cgroup/berth/c3"))
        #expect(try manager.directoryForClone() != nil)
    }

    @Test func v2SubtreeControlFallsBackToOneControllerAtATime() throws {
        let fs = cgroupFake(unifiedMountInfo)
        fs.files["/sys/fs/cgroup/cgroup.controllers"] = "cpu pids\n"
        fs.failingWrites["/sys/fs/cgroup/cgroup.subtree_control"] = EBUSY
        try CgroupV2Manager.enableControllers(in: "/sys/fs/cgroup", fs: fs)
        #expect(fs.writes.isEmpty)  // every attempt failed, and that is not fatal
    }

    /// Another container's runtime made the QoS parent but has not filled it yet: this one fills it
    /// before its own (joining an empty cpuset fails with ENOSPC).
    @Test func v1CreateFillsAParentAnotherProcessMadeButLeftEmpty() throws {
        let fs = cgroupFake(hybridMountInfo)
        fs.files["/sys/fs/cgroup/cpuset/cpuset.cpus"] = "0-1\n"
        fs.files["/sys/fs/cgroup/unified/cgroup.controllers"] = "hugetlb\n"
        fs.directories.insert("/sys/fs/cgroup/cpuset/berth")
        fs.files["/sys/fs/cgroup/cpuset/berth/cpuset.cpus"] = "\n"
        fs.files["/sys/fs/cgroup/cpuset/berth/cpuset.mems"] = "\n"
        let manager = try Cgroups.manager(cgroupsPath: "/berth/c5", containerID: "c5", fs: fs)
        try manager.create()
        let order = fs.writes.map(\.path).filter { $0.hasSuffix("cpuset.cpus") }
        #expect(order == ["/sys/fs/cgroup/cpuset/berth/cpuset.cpus", "/sys/fs/cgroup/cpuset/berth/c5/cpuset.cpus"])
        #expect(fs.values("/sys/fs/cgroup/cpuset/berth/c5/cpuset.cpus") == ["0-1"])
        #expect(fs.values("/sys/fs/cgroup/cpuset/berth/c5/cpuset.mems") == ["0"])
    }

    @Test func v1CreateCopiesCpusetFromTheParent() throws {
        let fs = cgroupFake(hybridMountInfo)
        fs.files["/sys/fs/cgroup/cpuset/cpuset.cpus"] = "0-1\n"
        fs.files["/sys/fs/cgroup/unified/cgroup.controllers"] = "hugetlb\n"
        let manager = try Cgroups.manager(cgroupsPath: "/berth/c4", containerID: "c4", fs: fs)
        try manager.create()
        #expect(fs.values("/sys/fs/cgroup/cpuset/berth/cpuset.cpus") == ["0-1"])
        #expect(fs.values("/sys/fs/cgroup/cpuset/berth/c4/cpuset.cpus") == ["0-1"])
        #expect(fs.values("/sys/fs/cgroup/cpuset/berth/c4/cpuset.mems") == ["0"])
        for dir in ["memory", "pids", "devices", "freezer", "blkio", "systemd", "cpu,cpuacct", "unified"] {
            #expect(fs.directories.contains("/sys/fs/cgroup/\(dir)/berth/c4"), "\(dir)")
        }
        #expect(fs.values("/sys/fs/cgroup/unified/cgroup.subtree_control") == ["+hugetlb"])
        #expect(try manager.directoryForClone() == nil)
    }

    @Test func v1ApplyWritesIntoEachControllersDirectory() throws {
        let fs = cgroupFake(hybridMountInfo)
        fs.files["/sys/fs/cgroup/unified/cgroup.controllers"] = "hugetlb\n"
        let manager = try Cgroups.manager(cgroupsPath: "/t", containerID: "t", fs: fs)
        try manager.create()
        fs.files["/sys/fs/cgroup/unified/t/cgroup.controllers"] = "hugetlb\n"
        fs.files["/sys/fs/cgroup/blkio/t/blkio.bfq.weight"] = "100"
        var r = Spec.Resources()
        r.pids = Spec.Pids(limit: 7)
        r.blockIO = Spec.BlockIO()
        r.blockIO!.weight = 300
        r.hugepageLimits = [Spec.HugepageLimit(pageSize: "2MB", limit: 2 << 20)]
        try manager.apply(r)
        #expect(fs.values("/sys/fs/cgroup/pids/t/pids.max") == ["7"])
        #expect(fs.values("/sys/fs/cgroup/blkio/t/blkio.bfq.weight") == ["300"])
        #expect(fs.values("/sys/fs/cgroup/unified/t/hugetlb.2MB.max") == ["2097152"])
        // net_cls is not mounted here: the error says which field could not be honoured.
        r = Spec.Resources()
        r.network = Spec.Network(classID: 1, priorities: nil)
        var message = ""
        do { try manager.apply(r) } catch { message = "\(error)" }
        #expect(message.contains("linux.resources.network.classID") && message.contains("net_cls"))
    }

    @Test func retryAfterRestRetriesEINVALAtTheEnd() throws {
        let fs = cgroupFake(unifiedMountInfo)
        fs.directories.insert("/sys/fs/cgroup/x")
        fs.failingWrites["/sys/fs/cgroup/x/a"] = EINVAL
        let writes = [
            CgroupWrite("", "a", "1", field: "f.a", retryAfterRest: true), CgroupWrite("", "b", "2", field: "f.b"),
        ]
        var message = ""
        do { try fs.execute(writes) { _ in "/sys/fs/cgroup/x" } } catch { message = "\(error)" }
        #expect(fs.values("/sys/fs/cgroup/x/b") == ["2"])  // b was written before a's retry
        #expect(message.contains("f.a"))
    }

    @Test func v2ApplyUsesBFQWeightWhenPresentAndReportsMissingFiles() throws {
        let fs = cgroupFake(unifiedMountInfo)
        fs.directories.insert("/sys/fs/cgroup/w")
        fs.files["/sys/fs/cgroup/w/io.bfq.weight"] = "default 100"
        let manager = Cgroups.restore(
            CgroupState(version: 2, path: "/sys/fs/cgroup/w", unifiedMount: "/sys/fs/cgroup"), fs: fs)
        var r = Spec.Resources()
        r.blockIO = Spec.BlockIO()
        r.blockIO!.weight = 500
        try manager.apply(r)
        #expect(fs.values("/sys/fs/cgroup/w/io.bfq.weight") == ["500"])
        fs.strictFiles = true
        r = Spec.Resources()
        r.pids = Spec.Pids(limit: 5)
        var message = ""
        do { try manager.apply(r) } catch { message = "\(error)" }
        #expect(message.contains("linux.resources.pids.limit") && message.contains("pids.max"))
        r = Spec.Resources()
        r.devices = [
            Spec.DeviceRule(allow: false, access: "rwm"),
            Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rw"),
        ]
        fs.strictFiles = false
        try manager.apply(r)
        #expect(fs.devicePrograms.count == 1 && fs.devicePrograms[0].directory == "/sys/fs/cgroup/w")
        #expect(fs.devicePrograms[0].instructions == (try CgroupDeviceProgram(r.devices!)).instructions)
    }

    @Test func v2FreezeWaitsForFrozenAndKillUsesCgroupKill() throws {
        let fs = cgroupFake(unifiedMountInfo)
        fs.directories.insert("/sys/fs/cgroup/k")
        fs.files["/sys/fs/cgroup/k/cgroup.procs"] = "10\n11\n"
        fs.files["/sys/fs/cgroup/k/cgroup.kill"] = ""
        fs.files["/sys/fs/cgroup/k/cgroup.events"] = "populated 1\nfrozen 0\n"
        let manager = Cgroups.restore(CgroupState(version: 2, path: "/sys/fs/cgroup/k"), fs: fs)
        #expect(!manager.isFrozen())
        try manager.freeze()
        #expect(manager.isFrozen())
        try manager.thaw()
        #expect(!manager.isFrozen())
        try manager.killAll(signal: SIGKILL)
        #expect(fs.values("/sys/fs/cgroup/k/cgroup.kill") == ["1"])
        #expect(fs.signals.isEmpty)
        try manager.killAll(signal: SIGTERM)
        #expect(fs.signals.map(\.pid) == [10, 11] && fs.signals.allSatisfy { $0.signal == SIGTERM })
        #expect(fs.values("/sys/fs/cgroup/k/cgroup.freeze") == ["1", "0", "1", "0"])
    }

    @Test func v2FreezeTimesOutWhenTheKernelNeverReportsFrozen() {
        let fs = cgroupFake(unifiedMountInfo)
        fs.directories.insert("/sys/fs/cgroup/s")
        let stuck = StuckFreezeFileSystem(fs)
        var failed = false
        do { try Cgroups.restore(CgroupState(version: 2, path: "/sys/fs/cgroup/s"), fs: stuck).freeze() } catch {
            failed = "\(error)".contains("did not become frozen")
        }
        #expect(failed)
        #expect(fs.values("/sys/fs/cgroup/s/cgroup.freeze") == ["1", "0"])  // left thawed after the failure
    }

    @Test func v1ProcessesIncludeChildCgroupsAndKillFreezesAroundSignals() throws {
        let fs = cgroupFake(hybridMountInfo)
        let manager = try Cgroups.manager(cgroupsPath: "/p", containerID: "p", fs: fs)
        try manager.create()
        fs.directories.insert("/sys/fs/cgroup/pids/p/child")
        fs.files["/sys/fs/cgroup/pids/p/cgroup.procs"] = "5\n"
        fs.files["/sys/fs/cgroup/pids/p/child/cgroup.procs"] = "6\n"
        #expect(try manager.processes() == [5, 6])
        try manager.killAll(signal: SIGTERM)
        #expect(fs.values("/sys/fs/cgroup/freezer/p/freezer.state") == ["FROZEN", "THAWED"])
        #expect(fs.signals.map(\.pid) == [5, 6])
        try manager.add(pid: 42)
        #expect(fs.values("/sys/fs/cgroup/memory/p/cgroup.procs") == ["42"])
        #expect(fs.values("/sys/fs/cgroup/unified/p/cgroup.procs") == ["42"])
        #expect(fs.values("/sys/fs/cgroup/cpu,cpuacct/p/cgroup.procs") == ["42"])  // co-mounted: once
    }

    @Test func destroyRemovesChildrenFirstAndRetriesBusy() throws {
        let fs = cgroupFake(hybridMountInfo)
        let manager = try Cgroups.manager(cgroupsPath: "/d", containerID: "d", fs: fs)
        try manager.create()
        fs.directories.insert("/sys/fs/cgroup/memory/d/sub")
        fs.busy["/sys/fs/cgroup/memory/d"] = 3
        try manager.destroy()
        #expect(!fs.directories.contains { $0.hasSuffix("/d") || $0.contains("/d/") })
        #expect(
            fs.removed.firstIndex(of: "/sys/fs/cgroup/memory/d/sub")! < fs.removed.firstIndex(
                of: "/sys/fs/cgroup/memory/d")!)
        #expect(fs.sleeps == 3)
        try manager.destroy()  // idempotent
    }

    @Test func stateRoundTripsThroughJSON() throws {
        let state = CgroupState(
            version: 1, paths: ["memory": "/sys/fs/cgroup/memory/berth/a"], path: "/sys/fs/cgroup/unified/berth/a",
            unifiedMount: "/sys/fs/cgroup/unified")
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(CgroupState.self, from: data) == state)
        #expect(Cgroups.restore(state, fs: cgroupFake(hybridMountInfo)).state == state)
    }
}

/// Wraps the fake so cgroup.events never reports frozen (a task stuck in D state).
final class StuckFreezeFileSystem: CgroupFileSystem, @unchecked Sendable {
    let inner: CgroupFakeFileSystem
    init(_ inner: CgroupFakeFileSystem) { self.inner = inner }
    func makeDirectory(_ path: String) throws(SystemCallError) -> Bool { try inner.makeDirectory(path) }
    func removeDirectory(_ path: String) throws(SystemCallError) { try inner.removeDirectory(path) }
    func readFile(_ path: String) throws(SystemCallError) -> String {
        path.hasSuffix("cgroup.events") ? "frozen 0\n" : try inner.readFile(path)
    }
    func writeFile(_ path: String, _ value: String) throws(SystemCallError) { try inner.writeFile(path, value) }
    func subdirectories(_ path: String) throws(SystemCallError) -> [String] { try inner.subdirectories(path) }
    func exists(_ path: String) -> Bool { inner.exists(path) }
    func fileSystemType(_ path: String) throws(SystemCallError) -> Int { try inner.fileSystemType(path) }
    func mountInfo() throws(SystemCallError) -> String { try inner.mountInfo() }
    func ownCgroups() throws(SystemCallError) -> String { try inner.ownCgroups() }
    func openDirectory(_ path: String) throws(SystemCallError) -> FileDescriptor { try inner.openDirectory(path) }
    func kill(pid: Int32, signal: Int32) throws(SystemCallError) { try inner.kill(pid: pid, signal: signal) }
    func sleep(milliseconds: Int) { inner.sleep(milliseconds: milliseconds) }
    func attachDeviceProgram(_ instructions: [UInt64], directory: String) throws(SystemCallError) {
        try inner.attachDeviceProgram(instructions, directory: directory)
    }
}
