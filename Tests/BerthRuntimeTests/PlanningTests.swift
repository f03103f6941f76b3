#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import FoundationEssentials
import Testing

/// The runtime's planning logic, without root: config decoding and validation, mount options,
/// namespaces, devices, cgroup mount discovery, /proc parsing, log formatting.
@Suite("Runtime planning")
struct PlanningTests {
    func decode(_ json: String) -> RuntimeError? {
        do { _ = try SpecLoader.decode(Array(json.utf8)); return nil } catch { return error }
    }

    @Test func decodingErrorsNameTheField() {
        let wrongType = decode(#"{"ociVersion":"1.2.0","process":{"user":{"uid":"zero","gid":0},"cwd":"/"}}"#)
        #expect(
            wrongType?.description.contains("process.user.uid: expected") == true, "\(String(describing: wrongType))")
        let missing = decode(#"{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0}}}"#)
        #expect(
            missing?.description.contains("process.cwd: required field is missing") == true,
            "\(String(describing: missing))")
        let array = decode(#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"pid"},{"type":7}]}}"#)
        #expect(array?.description.contains("linux.namespaces[1].type") == true, "\(String(describing: array))")
        #expect(decode("{") != nil)
        #expect(decode(#"{"ociVersion":"1.2.0"}"#) == nil)
    }

    func validationError(_ configure: (inout Spec) -> Void) throws -> String? {
        let bundle = "/tmp/berth-plan-\(UInt32.random(in: 0..<UInt32.max))"
        try FileSystem.makeDirectories(bundle + "/rootfs")
        defer { try? FileSystem.removeTree(bundle) }
        var spec = DefaultSpec.make()
        configure(&spec)
        do { try SpecValidator(spec: spec, bundle: bundle).validate(); return nil } catch { return error.description }
    }

    @Test func validationNamesWhatIsWrong() throws {
        #expect(try validationError { _ in } == nil)
        #expect(
            try validationError { $0.linux?.namespaces?.append(Spec.Namespace(type: "pidz")) }?.contains(
                "linux.namespaces[5].type: unknown namespace type") == true)
        #expect(
            try validationError { $0.linux?.namespaces?.append(Spec.Namespace(type: "pid")) }?.contains("listed twice")
                == true)
        #expect(
            try validationError { $0.mounts?[0].destination = "proc" }?.contains(
                "mounts[0].destination: must be an absolute path") == true)
        #expect(try validationError { $0.process?.args = [] }?.contains("process.args") == true)
        #expect(
            try validationError { $0.process?.cwd = "tmp" }?.contains("process.cwd: must be an absolute path") == true)
        #expect(try validationError { $0.root?.path = "missing" }?.contains("root.path") == true)
        #expect(
            try validationError { $0.linux?.sysctl = ["kernel.panic": "1"] }?.contains("not a namespaced sysctl")
                == true)
        #expect(
            try validationError {
                $0.linux?.namespaces = [Spec.Namespace(type: "mount")]; $0.hostname = "x"
            }?.contains("hostname") == true)
        #expect(
            try validationError { $0.linux?.uidMappings = [Spec.IDMapping(containerID: 0, hostID: 1000, size: 1)] }?
                .contains("need a user namespace") == true)
        #expect(
            try validationError {
                $0.mounts?.append(Spec.Mount(destination: "/x", type: "bind", source: "/tmp", options: ["rro"]))
            }?.contains("not supported") == true)
        #expect(
            try validationError {
                $0.hooks = {
                    var h = Spec.Hooks(); h.prestart = [Spec.Hook(path: "hook")]; return h
                }()
            }?.contains("hooks.prestart[0].path") == true)
    }

    @Test func mountOptionsBecomeFlagsPropagationAndData() {
        let options = MountOptions(["nosuid", "noexec", "ro", "rw", "mode=755", "size=1m", "rslave", "rbind"])
        #expect(options.flags & UInt(MS_NOSUID) != 0)
        #expect(options.flags & UInt(MS_NOEXEC) != 0)
        #expect(options.flags & UInt(MS_RDONLY) == 0, "rw after ro clears it")
        #expect(options.isRecursiveBind)
        #expect(options.data == ["mode=755", "size=1m"])
        #expect(options.propagation == [UInt(MS_SLAVE | MS_REC)])
        #expect(options.remountFlags == UInt(MS_NOSUID | MS_NOEXEC))
        #expect(MountOptions.check("idmap") != .ok)
        #expect(MountOptions.check("nodev") == .ok)
    }

    @Test func namespacePlanSplitsNewAndJoined() {
        let plan = NamespacePlan([
            Spec.Namespace(type: "mount"), Spec.Namespace(type: "network", path: "/proc/1/ns/net"),
            Spec.Namespace(type: "user"), Spec.Namespace(type: "pid"),
        ])
        #expect(plan.create == [.user, .pid, .mount], "user first, mount last")
        #expect(plan.join.map(\.kind) == [.network])
        #expect(plan.allKinds == [.user, .pid, .network, .mount])
        #expect(NamespaceKind.network.procName == "net")
    }

    @Test func devicePlanAndCgroupRules() {
        var spec = DefaultSpec.make()
        spec.linux?.devices = [
            Spec.Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o600),
            Spec.Device(type: "c", path: "/dev/fuse", major: 10, minor: 229),
        ]
        let nodes = Devices.plan(spec)
        #expect(nodes.count == Devices.defaults.count + 1)
        #expect(nodes.first { $0.path == "/dev/null" }?.mode == 0o600, "linux.devices overrides a default")
        let rules = Cgroups.deviceRules(spec.linux?.resources?.devices, devices: spec.linux?.devices)
        #expect(rules.first == Spec.DeviceRule(allow: false, access: "rwm"), "the config's rules come first")
        #expect(rules.contains(Spec.DeviceRule(allow: true, type: "c", major: 10, minor: 229, access: "rwm")))
        #expect(rules.contains(Spec.DeviceRule(allow: true, type: "c", major: 136, minor: nil, access: "rwm")))
    }

    @Test func cgroupHierarchiesFromMountinfo() {
        let mountinfo = """
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            50 31 0:40 / /tmp rw - tmpfs tmpfs rw
            """
        let cgroup = "4:memory:/berth/a\n1:cpu,cpuacct:/berth/a\n9:name=systemd:/berth/a\n0::/berth/a\n"
        let found = CgroupMounts.hierarchies(mountinfo: mountinfo, cgroups: cgroup)
        #expect(
            found.map(\.mountPoint) == [
                "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
            ])
        #expect(found.allSatisfy { $0.path == "/berth/a" })
        #expect(found.last?.isVersion2 == true)
    }

    @Test func procStatParsingSurvivesOddNames() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10"
        #expect(ProcessStat.parse(line) == ProcessStat(state: "S", startTime: 987654))
        #expect(ProcessStat.parse("garbage") == nil)
    }

    @Test func idsTimestampsAndLogQuoting() {
        #expect((try? StateStore.validate(id: "web-1.a_b+c")) != nil)
        for bad in ["", ".", "..", "a/b", "a b", "ü"] { #expect((try? StateStore.validate(id: bad)) == nil, "\(bad)") }
        let stamp = Timestamp.now(fixedNanoseconds: true)  // the form the runtime writes
        #expect(stamp.count == 30 && stamp.hasSuffix("Z") && stamp.dropFirst(10).first == "T", "\(stamp)")
        #expect(RuntimeLog.quote("a \"b\"\n\u{1}") == #""a \"b\"\n\u0001""#)
    }

    @Test func defaultSpecRoundTripsAndMatchesRuncShape() throws {
        let spec = DefaultSpec.make()
        let decoded = try SpecLoader.decode(Array(try JSONEncoder().encode(spec)))
        #expect(decoded == spec)
        #expect(spec.linux?.namespaces?.map(\.type) == ["pid", "network", "ipc", "uts", "mount"])
        #expect(spec.root == Spec.Root(path: "rootfs", readonly: true))
        let rootless = DefaultSpec.rootless(uid: 1000, gid: 1000)
        #expect(rootless.linux?.uidMappings == [Spec.IDMapping(containerID: 0, hostID: 1000, size: 1)])
        #expect(rootless.linux?.namespaces?.contains(Spec.Namespace(type: "user")) == true)
    }
}
