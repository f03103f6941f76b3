#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import Testing
@testable import BerthRuntime

private func profile(
    _ defaultAction: String = "SCMP_ACT_ALLOW", _ syscalls: [Spec.Syscall] = [],
    configure: (inout Spec.Seccomp) -> Void = { _ in }
) -> Spec.Seccomp {
    var seccomp = Spec.Seccomp(defaultAction: defaultAction)
    seccomp.syscalls = syscalls
    configure(&seccomp)
    return seccomp
}

@Suite struct SeccompTests {
    @Test func everyActionTranslates() throws {
        let expected: [(String, UInt32?, UInt32)] = [
            ("SCMP_ACT_KILL", nil, 0), ("SCMP_ACT_KILL_THREAD", nil, 0), ("SCMP_ACT_KILL_PROCESS", nil, 0x8000_0000),
            ("SCMP_ACT_TRAP", nil, 0x0003_0000), ("SCMP_ACT_ERRNO", nil, 0x0005_0001),
            ("SCMP_ACT_ERRNO", 38, 0x0005_0026),
            ("SCMP_ACT_TRACE", nil, 0x7ff0_0001), ("SCMP_ACT_TRACE", 5, 0x7ff0_0005),
            ("SCMP_ACT_LOG", nil, 0x7ffc_0000),
            ("SCMP_ACT_ALLOW", nil, 0x7fff_0000), ("SCMP_ACT_NOTIFY", nil, 0x7fc0_0000),
        ]
        for (name, errno, value) in expected {
            let plan = try SeccompPlan(
                profile("SCMP_ACT_LOG", [Spec.Syscall(names: ["getcwd"], action: name, errnoRet: errno)]) {
                    $0.listenerPath = "/run/agent.sock"
                })
            if name == "SCMP_ACT_LOG" { #expect(plan.rules.isEmpty); continue }  // same as the default: skipped
            #expect(plan.rules.first?.action == value, "\(name)")
            #expect(plan.usesNotify == (name == "SCMP_ACT_NOTIFY"))
        }
        #expect(try SeccompPlan(profile("SCMP_ACT_ERRNO") { $0.defaultErrnoRet = 95 }).defaultAction == 0x0005_005f)
        #expect(try SeccompPlan(profile("SCMP_ACT_ERRNO")).defaultAction == 0x0005_0001)
    }

    @Test func conditionsKeepOperatorsAndBothValues() throws {
        let args = [
            Spec.SyscallArg(index: 0, value: 0x7e02_0000, valueTwo: 0x0002_0000, op: "SCMP_CMP_MASKED_EQ"),
            Spec.SyscallArg(index: 2, value: 5, op: "SCMP_CMP_NE"),
        ]
        let plan = try SeccompPlan(
            profile(
                "SCMP_ACT_ERRNO", [Spec.Syscall(names: ["clone", "personality"], action: "SCMP_ACT_ALLOW", args: args)])
        )
        #expect(plan.rules.count == 2)
        #expect(plan.rules[0].syscall == "clone" && plan.rules[0].number == 56)
        #expect(
            plan.rules[0].conditions == [
                .init(index: 0, op: 7, value: 0x7e02_0000, valueTwo: 0x0002_0000),
                .init(index: 2, op: 1, value: 5, valueTwo: 0),
            ])
        for (i, op) in SeccompPlan.operatorNames.enumerated() {
            let p = try SeccompPlan(
                profile(
                    "SCMP_ACT_ERRNO",
                    [
                        Spec.Syscall(
                            names: ["read"], action: "SCMP_ACT_ALLOW",
                            args: [Spec.SyscallArg(index: 1, value: 3, op: op)])
                    ]))
            #expect(p.rules[0].conditions[0].op == UInt32(i + 1), "\(op)")
        }
    }

    @Test func conditionsOnTheSameArgumentBecomeSeparateRules() throws {
        let args = [
            Spec.SyscallArg(index: 0, value: 0, op: "SCMP_CMP_EQ"),
            Spec.SyscallArg(index: 0, value: 8, op: "SCMP_CMP_EQ"),
        ]
        let plan = try SeccompPlan(
            profile("SCMP_ACT_ERRNO", [Spec.Syscall(names: ["personality"], action: "SCMP_ACT_ALLOW", args: args)]))
        #expect(plan.rules.count == 2 && plan.rules.allSatisfy { $0.conditions.count == 1 })
        #expect(plan.rules.map { $0.conditions[0].value } == [0, 8])
    }

    @Test func unknownSyscallsAreIgnoredLikeRunc() throws {
        let plan = try SeccompPlan(
            profile(
                "SCMP_ACT_ERRNO", [Spec.Syscall(names: ["read", "no_such_syscall", "write"], action: "SCMP_ACT_ALLOW")])
        )
        #expect(plan.rules.map(\.syscall) == ["read", "write"])
        #expect(plan.ignoredSyscalls == ["no_such_syscall"])
    }

    @Test func architecturesAndFlags() throws {
        let plan = try SeccompPlan(
            profile {
                $0.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]
                $0.flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            })
        #expect(plan.architectures.count == 4)
        #expect(plan.architectures[0] == 0xc000_003e)  // AUDIT_ARCH_X86_64
        #expect(plan.logFlag && plan.specAllowFlag)
    }

    @Test func invalidProfilesNameTheField() {
        #expect(invalidField { _ = try SeccompPlan(profile("SCMP_ACT_NOPE")) } == "linux.seccomp.defaultAction")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile(
                        "SCMP_ACT_ALLOW",
                        [
                            Spec.Syscall(names: ["read"], action: "SCMP_ACT_ALLOW"),
                            Spec.Syscall(names: ["mkdir"], action: "ERRNO"),
                        ]))
            }
                == "linux.seccomp.syscalls[1].action")
        #expect(
            invalidField { _ = try SeccompPlan(profile { $0.architectures = ["SCMP_ARCH_VAX"] }) }
                == "linux.seccomp.architectures[0]")
        #expect(
            invalidField { _ = try SeccompPlan(profile { $0.flags = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] }) }
                == "linux.seccomp.flags[0]")
        #expect(
            invalidField { _ = try SeccompPlan(profile { $0.flags = ["SECCOMP_FILTER_FLAG_NOPE"] }) }
                == "linux.seccomp.flags[0]")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile(
                        "SCMP_ACT_ALLOW",
                        [
                            Spec.Syscall(
                                names: ["read"], action: "SCMP_ACT_ERRNO",
                                args: [Spec.SyscallArg(index: 6, value: 0, op: "SCMP_CMP_EQ")])
                        ]))
            }
                == "linux.seccomp.syscalls[0].args[0].index")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile(
                        "SCMP_ACT_ALLOW",
                        [
                            Spec.Syscall(
                                names: ["read"], action: "SCMP_ACT_ERRNO",
                                args: [Spec.SyscallArg(index: 0, value: 0, op: "SCMP_CMP_LIKE")])
                        ]))
            }
                == "linux.seccomp.syscalls[0].args[0].op")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile("SCMP_ACT_ALLOW", [Spec.Syscall(names: ["read"], action: "SCMP_ACT_KILL", errnoRet: 1)]))
            }
                == "linux.seccomp.syscalls[0].errnoRet")
        #expect(
            invalidField { _ = try SeccompPlan(profile("SCMP_ACT_ALLOW") { $0.defaultErrnoRet = 1 }) }
                == "linux.seccomp.defaultErrnoRet")
        #expect(
            invalidField { _ = try SeccompPlan(profile("SCMP_ACT_NOTIFY") { $0.listenerPath = "/x" }) }
                == "linux.seccomp.defaultAction")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile("SCMP_ACT_ALLOW", [Spec.Syscall(names: ["mkdir"], action: "SCMP_ACT_NOTIFY")]))
            }
                == "linux.seccomp.listenerPath")
        #expect(
            invalidField {
                _ = try SeccompPlan(
                    profile("SCMP_ACT_ALLOW", [Spec.Syscall(names: ["write"], action: "SCMP_ACT_NOTIFY")]) {
                        $0.listenerPath = "/x"
                    })
            }
                == "linux.seccomp.syscalls[0].names")
    }

    /// Loads a filter on a dedicated thread (seccomp filters and no_new_privs are per thread without
    /// TSYNC) and checks that mkdir is refused with the configured errno while other threads are not.
    @Test func loadedFilterDeniesMkdirOnItsThreadOnly() throws {
        let program = try SeccompProgram(
            profile(
                "SCMP_ACT_ALLOW",
                [Spec.Syscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: UInt32(EACCES))]))
        let directory = "/tmp/berth-seccomp-\(getpid())"
        let outcome: (load: String?, result: Int32, errno: Int32) = onDedicatedThread {
            _ = berth_prctl(38, 1, 0, 0, 0)  // PR_SET_NO_NEW_PRIVS on this thread, so no CAP_SYS_ADMIN is needed
            do { _ = try program.load() } catch { return ("\(error)", 0, 0) }
            let result = mkdir(directory, 0o755)
            return (nil, result, errno)
        }
        #expect(outcome.load == nil)
        #expect(outcome.result == -1 && outcome.errno == EACCES)
        #expect(mkdir(directory, 0o755) == 0)  // this thread has no filter
        rmdir(directory)
    }

    /// The compiled-filter cache: the first load compiles and keeps the program, the second loads what
    /// was kept, and both deny; a damaged or foreign file under the same name is never loaded.
    @Test func cachedFiltersDenyLikeCompiledOnesAndDamagedFilesAreIgnored() throws {
        let program = try SeccompProgram(
            profile(
                "SCMP_ACT_ALLOW",
                [Spec.Syscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: UInt32(EACCES))]))
        let cacheDirectory = "/tmp/berth-seccomp-cache-\(getpid())"
        try FileSystem.makeDirectories(cacheDirectory, mode: 0o700)
        defer { _ = try? FileSystem.removeTree(cacheDirectory) }
        let fd = try FileDescriptor.open(cacheDirectory, BERTH_O_PATH | O_DIRECTORY)
        let cache = SeccompCache(directory: fd.rawValue)
        let key = SeccompCache.key(program.plan)
        let file = cacheDirectory + "/" + SeccompCache.fileName(key)
        let target = "/tmp/berth-seccomp-cached-\(getpid())"
        func loadAndMkdir() -> (String?, Int32, Int32) {
            onDedicatedThread {
                _ = berth_prctl(38, 1, 0, 0, 0)  // PR_SET_NO_NEW_PRIVS: no CAP_SYS_ADMIN needed
                do { _ = try program.load(cache: cache) } catch { return ("\(error)", 0, 0) }
                let result = mkdir(target, 0o755)
                return (nil, result, errno)
            }
        }
        let first = loadAndMkdir()
        #expect(first.0 == nil && first.1 == -1 && first.2 == EACCES)
        let kept = try FileSystem.readFile(file)
        #expect(try cache.lookup(key) == program.compile())
        let second = loadAndMkdir()
        #expect(second.0 == nil && second.1 == -1 && second.2 == EACCES)
        // Another plan's key in the file (a hash collision, or tampering): ignored, compiled afresh.
        var foreign = kept
        foreign[8 + 20] ^= 0xff
        try FileSystem.writeAtomically(file, foreign)
        #expect(cache.lookup(key) == nil)
        let third = loadAndMkdir()
        #expect(third.0 == nil && third.1 == -1 && third.2 == EACCES)
        #expect(try FileSystem.readFile(file) == kept)
        // A truncated program is not loaded either.
        try FileSystem.writeAtomically(file, Array(kept.dropLast(3)))
        #expect(cache.lookup(key) == nil)
        #expect(mkdir(target, 0o755) == 0)  // this thread has no filter
        rmdir(target)
    }

    @Test func cacheKeysTellEveryPartOfThePlanApart() throws {
        let base = try SeccompPlan(
            profile(
                "SCMP_ACT_ERRNO",
                [
                    Spec.Syscall(
                        names: ["read"], action: "SCMP_ACT_ALLOW",
                        args: [Spec.SyscallArg(index: 0, value: 1, op: "SCMP_CMP_EQ")])
                ]))
        var variants = [base]
        var v = base; v.defaultAction ^= 1; variants.append(v)
        v = base; v.logFlag = true; variants.append(v)
        v = base; v.rules[0].conditions[0].value = 2; variants.append(v)
        v = base; v.rules[0].conditions[0].valueTwo = 2; variants.append(v)
        v = base; v.rules[0].action ^= 1; variants.append(v)
        v = base; v.rules[0].number += 1; variants.append(v)
        v = base; v.architectures.append(0xc000_003e); variants.append(v)
        let keys = Set(variants.map { SeccompCache.key($0) })
        #expect(keys.count == variants.count)
        #expect(
            SeccompCache.key(base)
                == SeccompCache.key(
                    try SeccompPlan(
                        profile(
                            "SCMP_ACT_ERRNO",
                            [
                                Spec.Syscall(
                                    names: ["read"], action: "SCMP_ACT_ALLOW",
                                    args: [Spec.SyscallArg(index: 0, value: 1, op: "SCMP_CMP_EQ")])
                            ]))))
        #expect(SeccompCache.fileName(SeccompCache.key(base)).count == 20)
    }

    @Test func notifyListenerReceivesTheDescriptorAndState() throws {
        let program = try SeccompProgram(
            profile("SCMP_ACT_ALLOW", [Spec.Syscall(names: ["getppid"], action: "SCMP_ACT_NOTIFY")]) {
                $0.listenerPath = "/unused"
            })
        let path = "/tmp/berth-seccomp-agent-\(getpid()).sock"
        unlink(path)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0 && listen(listener, 1) == 0)
        let state = Array(#"{"ociVersion":"1.2.0","fds":["seccompFd"]}"#.utf8)
        let sent: String? = onDedicatedThread {
            _ = berth_prctl(38, 1, 0, 0, 0)
            do {
                guard let fd = try program.load() else { return "no listener descriptor" }
                try SeccompProgram.sendToListener(path: path, fd: fd, state: state)
                return nil
            } catch { return "\(error)" }
        }
        #expect(sent == nil)
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        defer { close(connection) }
        var received: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { berth_recv_fd(connection, &received, $0.baseAddress, $0.count) }
        #expect(count == state.count && Array(buffer[0..<count]) == state)
        #expect(received >= 0)
        if received >= 0 {
            // A seccomp notify descriptor is an anon inode "[seccomp notify]".
            var link = [CChar](repeating: 0, count: 128)
            _ = readlink("/proc/self/fd/\(received)", &link, 127)
            #expect(link.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.contains("seccomp"))
            close(received)
        }
    }

    @Test func featureListsAreComplete() {
        #expect(SeccompPlan.actionNames.count == 9)
        #expect(SeccompPlan.operatorNames.count == 7)
        #expect(SeccompPlan.architectureNames.contains { $0.oci == "SCMP_ARCH_RISCV64" })
    }
}
