@testable import BerthEngine
import BerthOCI
import BerthOS
import Testing

@Suite("Spec builder: docker's seccomp profile")
struct SpecSeccompTests {
    func resolve(
        _ capabilities: [String] = ContainerCapabilities.dockerDefault,
        host: HostFacts = specTestHost
    ) throws -> Spec.Seccomp {
        try #require(try SeccompProfile.dockerDefault.resolve(capabilities: capabilities, host: host))
    }

    /// Names the profile allows without argument conditions.
    func allowed(_ seccomp: Spec.Seccomp) -> Set<String> {
        Set(
            (seccomp.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && ($0.args ?? []).isEmpty }.flatMap(
                \.names))
    }

    @Test("deny by default with EPERM, for x86_64 and the 32-bit ABIs it runs")
    func header() throws {
        let seccomp = try resolve()
        #expect(seccomp.defaultAction == "SCMP_ACT_ERRNO")
        #expect(seccomp.defaultErrnoRet == 1)
        #expect(seccomp.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        var arm = specTestHost
        arm.architecture = "arm64"
        #expect(try resolve(host: arm).architectures == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    }

    @Test("ordinary syscalls are allowed; the count matches moby's list")
    func ordinary() throws {
        let names = allowed(try resolve())
        for name in [
            "read", "write", "openat", "execve", "exit_group", "futex", "epoll_wait", "arch_prctl", "modify_ldt",
        ] {
            #expect(names.contains(name), "\(name)")
        }
        // moby v28.5.2: 361 unconditional names, plus ptrace & co (kernel ≥ 4.8) and the x86 ones.
        #expect(names.count >= 360 && names.count <= 380, "\(names.count)")
        var arm = specTestHost
        arm.architecture = "arm64"
        #expect(!allowed(try resolve(host: arm)).contains("arch_prctl"))
    }

    @Test("mount, unshare, setns and the new mount API need CAP_SYS_ADMIN")
    func sysAdmin() throws {
        let plain = allowed(try resolve())
        for name in ["mount", "umount2", "unshare", "setns", "fsopen", "open_tree", "bpf", "clone3"] {
            #expect(!plain.contains(name), "\(name)")
        }
        let admin = allowed(try resolve(ContainerCapabilities.dockerDefault + ["CAP_SYS_ADMIN"]))
        for name in ["mount", "umount2", "unshare", "setns", "fsopen", "open_tree", "clone", "clone3"] {
            #expect(admin.contains(name), "\(name)")
        }
    }

    @Test("clone is allowed only without namespace flags; clone3 fails with ENOSYS so libc falls back")
    func cloneFilter() throws {
        let rules = try resolve().syscalls ?? []
        let clone = try #require(rules.first { $0.names == ["clone"] })
        #expect(clone.action == "SCMP_ACT_ALLOW")
        #expect(clone.args == [Spec.SyscallArg(index: 0, value: 2_114_060_288, op: "SCMP_CMP_MASKED_EQ")])
        let clone3 = try #require(rules.first { $0.names == ["clone3"] })
        #expect(clone3.action == "SCMP_ACT_ERRNO")
        #expect(clone3.errnoRet == 38)
        // With CAP_SYS_ADMIN both filters give way to the unconditional rule.
        let admin = try resolve(ContainerCapabilities.dockerDefault + ["CAP_SYS_ADMIN"]).syscalls ?? []
        #expect(!admin.contains { $0.names == ["clone"] && $0.args != nil })
        #expect(!admin.contains { $0.names == ["clone3"] && $0.action == "SCMP_ACT_ERRNO" })
    }

    @Test("socket refuses AF_VSOCK; personality allows only docker's five values")
    func argumentFilters() throws {
        let rules = try resolve().syscalls ?? []
        #expect(
            rules.first { $0.names == ["socket"] }?.args == [Spec.SyscallArg(index: 0, value: 40, op: "SCMP_CMP_NE")])
        let personalities = rules.filter { $0.names == ["personality"] }.compactMap { $0.args?.first?.value }
        #expect(personalities == [0, 8, 131_072, 131_080, 4_294_967_295])
    }

    @Test("ptrace needs kernel 4.8 or CAP_SYS_PTRACE; kcmp and pidfd_getfd need CAP_SYS_PTRACE")
    func ptrace() throws {
        let modern = allowed(try resolve())
        #expect(modern.contains("ptrace") && modern.contains("process_vm_readv"))
        #expect(!modern.contains("kcmp") && !modern.contains("pidfd_getfd"))
        var old = specTestHost
        old.kernel = .init(4, 4)
        #expect(!allowed(try resolve(host: old)).contains("ptrace"))
        let traced = allowed(try resolve(ContainerCapabilities.dockerDefault + ["CAP_SYS_PTRACE"], host: old))
        #expect(traced.contains("ptrace") && traced.contains("kcmp") && traced.contains("pidfd_getfd"))
    }

    @Test(
        "other capability sections follow their capability",
        arguments: [
            ("CAP_SYS_BOOT", "reboot"), ("CAP_SYS_MODULE", "init_module"), ("CAP_SYS_TIME", "settimeofday"),
            ("CAP_SYS_NICE", "mbind"), ("CAP_SYSLOG", "syslog"), ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
            ("CAP_SYS_RAWIO", "iopl"), ("CAP_SYS_PACCT", "acct"), ("CAP_BPF", "bpf"),
            ("CAP_PERFMON", "perf_event_open"),
        ])
    func capabilitySections(capability: String, syscall: String) throws {
        #expect(!allowed(try resolve()).contains(syscall))
        #expect(allowed(try resolve(ContainerCapabilities.dockerDefault + [capability])).contains(syscall))
    }

    @Test("chroot follows CAP_SYS_CHROOT, which docker grants by default")
    func chroot() throws {
        #expect(allowed(try resolve()).contains("chroot"))
        #expect(
            !allowed(try resolve(ContainerCapabilities.dockerDefault.filter { $0 != "CAP_SYS_CHROOT" })).contains(
                "chroot"))
    }

    @Test("the built spec carries the profile resolved for its capabilities")
    func inSpec() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.capAdd = ["SYS_PTRACE"]
        let seccomp = try #require(
            try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost).linux?.seccomp)
        #expect(allowed(seccomp).contains("kcmp"))
    }

    @Test("a profile file in docker's format: name or names, includes, archMap, errors")
    func customProfile() throws {
        let json = """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
             "syscalls": [
               {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no"},
               {"names": ["reboot"], "action": "SCMP_ACT_KILL", "excludes": {"caps": ["CAP_SYS_BOOT"]}},
               {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "99.0"}},
               {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
             ]}
            """
        let seccomp = try #require(
            try SeccompProfile.decode(Array(json.utf8)).resolve(capabilities: [], host: specTestHost))
        #expect(seccomp.defaultAction == "SCMP_ACT_ALLOW")
        #expect(seccomp.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        #expect(seccomp.syscalls?.map(\.names) == [["mkdir"], ["reboot"], ["socket"]])
        #expect(seccomp.syscalls?.first?.errnoRet == 13)

        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.securityOpt = ["seccomp=  " + json.replacingNewlines()]
        #expect(
            try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost).linux?.seccomp
                == seccomp)
        // An explicit profile applies even to a privileged container.
        request.privileged = true
        #expect(
            try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost).linux?.seccomp?
                .defaultAction == "SCMP_ACT_ALLOW")

        #expect(
            invalidReason { _ = try SeccompProfile.decode(Array("{nope".utf8)) }?.hasPrefix(
                "Decoding seccomp profile failed") == true)
        let both =
            #"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#
        #expect(
            invalidReason {
                _ = try SeccompProfile.decode(Array(both.utf8)).resolve(capabilities: [], host: specTestHost)
            }?
            .contains("both 'architectures' and 'archMap'") == true)
        let nameAndNames =
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}"#
        #expect(
            invalidReason {
                _ = try SeccompProfile.decode(Array(nameAndNames.utf8)).resolve(capabilities: [], host: specTestHost)
            }?
            .contains("both 'name' and 'names'") == true)
        let badKernel =
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "4"}}]}"#
        #expect(
            invalidReason {
                _ = try SeccompProfile.decode(Array(badKernel.utf8)).resolve(capabilities: [], host: specTestHost)
            }?
            .contains("invalid kernel version") == true)
        #expect(
            try SeccompProfile.decode(Array(#"{"defaultAction": ""}"#.utf8)).resolve(
                capabilities: [], host: specTestHost) == nil)
    }
}

extension String {
    fileprivate func replacingNewlines() -> String { split(separator: "\n").joined(separator: " ") }
}

@Suite("Spec builder: host facts and the generated profile")
struct SpecHostFactsTests {
    @Test("the generated profile is moby v28.5.2's: 31 entries, 361 unconditional names first")
    func generatedProfile() throws {
        let rules = try #require(SeccompProfile.dockerDefault.syscalls)
        #expect(rules.count == 31)
        #expect(rules[0].names?.count == 361 && rules[0].action == "SCMP_ACT_ALLOW" && rules[0].includes == nil)
        #expect(
            rules[1].names == ["process_vm_readv", "process_vm_writev", "ptrace"]
                && rules[1].includes?.minKernel == "4.8")
        #expect(SeccompProfile.dockerDefault.archMap?.count == 8)
    }

    @Test("kernel releases parse to major.minor; machine names map to Go's")
    func parsing() {
        #expect(HostFacts.KernelVersion(release: "6.1.0-18-amd64") == .init(6, 1))
        #expect(HostFacts.KernelVersion(release: "3.12-1-amd64") == .init(3, 12))
        #expect(HostFacts.KernelVersion(release: "6.18.44-fc-v1147") == .init(6, 18))
        #expect(HostFacts.KernelVersion(release: "linux") == nil)
        #expect(HostFacts.KernelVersion(4, 8) < HostFacts.KernelVersion(4, 10))
        #expect(HostFacts.goArchitecture(machine: "x86_64") == "amd64")
        #expect(HostFacts.goArchitecture(machine: "aarch64") == "arm64")
        #expect(HostFacts.goArchitecture(machine: "i686") == "x86")
    }

    @Test("this machine's facts agree with /proc")
    func current() throws {
        let host = HostFacts.current()
        let last = try FileSystem.readString("/proc/sys/kernel/cap_last_cap").split(separator: "\n").first.flatMap {
            Int($0)
        }
        #expect(host.lastCapability == last)
        #expect(host.ownCapabilities != nil)
        #expect(host.availableCapabilities.count <= host.lastCapability + 1)
        #expect(host.cpuCount >= 1)
        #expect(host.kernel >= .init(4, 0))
        #expect(!host.architecture.isEmpty)
    }

    @Test("seccomp=FILE reads a profile file; a file that is not JSON is an error naming it")
    func profileFile() throws {
        let directory = SpecScratchDirectory("seccomp")
        directory.write("p.json", #"{"defaultAction": "SCMP_ACT_LOG"}"#)
        directory.write("bad.json", "not json")
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.securityOpt = ["seccomp=\(directory.path)/p.json"]
        #expect(
            try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost).linux?.seccomp?
                .defaultAction == "SCMP_ACT_LOG")
        request.securityOpt = ["seccomp=\(directory.path)/bad.json"]
        #expect(
            invalidReason { _ = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost) }?
                .hasPrefix("Decoding seccomp profile failed") == true)
    }
}
