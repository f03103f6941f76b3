#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import FoundationEssentials
import Testing

let runcBinary: String? = ["/usr/sbin/runc", "/usr/bin/runc"].first { FileSystem.exists($0) }

/// Where runc 1.1.5 succeeds, berth-runtime must too: each test runs the same bundle under both and
/// asserts that both succeed and that the container saw the same thing.
@Suite("Conformance with runc (root)", .enabled(if: isRealRoot && hasBusybox && runcBinary != nil))
struct RuncConformanceTests {
    /// runc or berth-runtime, each with a state root and a cgroup parent of its own inside one sandbox.
    enum Implementation: String, CaseIterable {
        case runc, berth

        var binary: String { self == .runc ? runcBinary! : runtimeBinary }
    }

    /// A sandbox whose containers, under either runtime, are force-deleted at the end, with their cgroups.
    final class Pair {
        let box: Sandbox
        private var made: [(Implementation, String)] = []

        init(_ name: String) { box = Sandbox(name) }

        deinit {
            for (runtime, id) in made { _ = self.runtime(runtime, ["delete", "--force", id]) }
            for controller in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
                let parent = "/sys/fs/cgroup/\(controller)/\(box.prefix)"
                for child in (try? FileSystem.listDirectory(parent)) ?? []
                where FileSystem.isDirectory(parent + "/" + child) {
                    rmdir(parent + "/" + child)
                }
                rmdir(parent)
            }
        }

        func id(_ runtime: Implementation, _ name: String) -> String {
            let id = "\(box.prefix)-\(runtime.rawValue)-\(name)"
            made.append((runtime, id))
            return id
        }

        var directory: String { box.directory }

        func stateRoot(_ runtime: Implementation) -> String { box.directory + "/state-" + runtime.rawValue }

        @discardableResult
        func runtime(_ runtime: Implementation, _ arguments: [String], prefix: [String] = []) -> Output {
            execute(prefix + [runtime.binary, "--root", stateRoot(runtime)] + arguments)
        }

        func state(_ runtime: Implementation, _ id: String) -> StateReport? {
            let output = self.runtime(runtime, ["state", id])
            guard output.status == 0 else { return nil }
            return try? JSONDecoder().decode(StateReport.self, from: Data(output.stdout.utf8))
        }

        /// A busybox bundle for `runtime` whose cgroup lies under this sandbox's prefix.
        func bundle(
            _ runtime: Implementation, _ name: String, script: String, configure: (inout Spec) -> Void = { _ in }
        ) -> String {
            box.bundle("\(runtime.rawValue)-\(name)", script: script) { spec in
                spec.linux?.cgroupsPath = "/\(box.prefix)/\(runtime.rawValue)-\(name)"
                configure(&spec)
            }
        }

        /// A directory both the host and the container (as host uid `owner`) can write, bind-mounted at /shared.
        func shared(_ name: String, owner: uid_t = 0) -> (path: String, mount: Spec.Mount) {
            let path = box.directory + "/shared-" + name
            try! FileSystem.makeDirectories(path)
            chown(path, owner, owner)
            return (path, Spec.Mount(destination: "/shared", type: "bind", source: path, options: ["rbind"]))
        }
    }

    static func link(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buffer, 255)
        return String(decoding: buffer.prefix(Int(max(n, 0))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The innermost pid of `pid` (its pid in its own pid namespace), from /proc/<pid>/status.
    static func innermostPid(_ pid: Int32) -> String? {
        let status = (try? FileSystem.readString("/proc/\(pid)/status")) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last.map(String.init)
    }

    static let mapping = [Spec.IDMapping(containerID: 0, hostID: 100000, size: 65536)]

    /// A rootfs owned by the mapped root, as an image unpacked for a user namespace would be.
    static func useMappings(_ spec: inout Spec) {
        if !(spec.linux?.namespaces ?? []).contains(where: { $0.type == "user" }) {
            spec.linux?.namespaces?.append(Spec.Namespace(type: "user"))
        }
        spec.linux?.uidMappings = mapping
        spec.linux?.gidMappings = mapping
    }

    static func chownRootfs(_ bundle: String) {
        let chowned = execute(["chown", "-R", "100000:100000", bundle + "/rootfs"])
        precondition(chowned.status == 0, chowned.stderr)
    }

    /// Starts a created container and waits for its process to exit.
    static func startAndWait(_ pair: Pair, _ runtime: Implementation, _ id: String) -> (started: Output, exited: Bool) {
        let pid = pair.state(runtime, id)?.pid ?? 0
        let started = pair.runtime(runtime, ["start", id])
        return (started, pid > 0 && waitForExit(pid: pid))
    }

    // MARK: Joining namespaces by path

    /// A container created (not started) with new namespaces of every type; a second container joins each
    /// of them by /proc/<pid>/ns/… and sees them, and `state` reports its init from `created` on.
    @Test func aContainerJoinsEveryNamespaceOfACreatedContainerByPath() throws {
        let pair = Pair("join")
        var results: [Implementation: String] = [:]
        for runtime in Implementation.allCases {
            // runc 1.1.5 predates time namespaces; berth-runtime creates and joins one too.
            var kinds = ["user", "pid", "network", "ipc", "uts", "cgroup"]
            if runtime == .berth && FileSystem.exists("/proc/self/ns/time") { kinds.append("time") }
            let first = pair.bundle(runtime, "first", script: "exec sleep 1000") { spec in
                Self.useMappings(&spec)
                for kind in kinds where !(spec.linux?.namespaces ?? []).contains(where: { $0.type == kind }) {
                    spec.linux?.namespaces?.append(Spec.Namespace(type: kind))
                }
            }
            Self.chownRootfs(first)
            let firstID = pair.id(runtime, "first")
            let created = pair.runtime(runtime, ["create", "--bundle", first, firstID])
            #expect(created.status == 0, "\(runtime): \(created.stderr)")
            let firstPid = try #require(pair.state(runtime, firstID)?.pid, "\(runtime)")
            let procNames = kinds.map { NamespaceKind(rawValue: $0)!.procName }
            let expected = procNames.map { Self.link("/proc/\(firstPid)/ns/\($0)") }

            let shared = pair.shared(runtime.rawValue, owner: 100000)
            let second = pair.bundle(
                runtime, "second",
                script:
                    "for n in \(procNames.joined(separator: " ")); do readlink /proc/self/ns/$n; done > /shared/out; id >> /shared/out; echo $$ > /shared/pid"
            ) { spec in
                Self.useMappings(&spec)
                spec.root?.path = first + "/rootfs"
                spec.mounts?.append(shared.mount)
                let own = (spec.linux?.namespaces ?? []).filter { !kinds.contains($0.type) }
                spec.linux?.namespaces =
                    own + zip(kinds, procNames).map { Spec.Namespace(type: $0, path: "/proc/\(firstPid)/ns/\($1)") }
            }
            let secondID = pair.id(runtime, "second")
            let joined = pair.runtime(runtime, ["create", "--bundle", second, secondID])
            #expect(joined.status == 0, "\(runtime): \(joined.stderr)")
            // From `created` on, state's pid is the process that becomes the container's program.
            let secondPid = try #require(pair.state(runtime, secondID)?.pid, "\(runtime)")
            #expect(Self.link("/proc/\(secondPid)/ns/pid") == Self.link("/proc/\(firstPid)/ns/pid"), "\(runtime)")
            let innermost = Self.innermostPid(secondPid)
            let (started, exited) = Self.startAndWait(pair, runtime, secondID)
            #expect(started.status == 0, "\(runtime): \(started.stderr)")
            #expect(exited, "\(runtime)")
            let output = (try? FileSystem.readString(shared.path + "/out")) ?? ""
            #expect(
                output.split(separator: "\n").prefix(expected.count).map(String.init) == expected,
                "\(runtime): \(output)")
            #expect((try? FileSystem.readString(shared.path + "/pid")) == innermost.map { $0 + "\n" }, "\(runtime)")
            results[runtime] = output.split(separator: "\n").last.map(String.init)
        }
        #expect(results[.berth] != nil && results[.berth] == results[.runc], "\(results)")
    }

    /// A mount namespace held by a bind-mounted nsfs file (as `ip netns` holds network namespaces) is
    /// joined by path: the container's root is pivoted inside it.
    @Test func aContainerJoinsAMountNamespaceHeldByAFile() throws {
        let pair = Pair("joinmnt")
        var results: [Implementation: Output] = [:]
        for runtime in Implementation.allCases {
            let holder = pair.directory + "/mntns-" + runtime.rawValue
            try FileSystem.writeAtomically(holder, [])
            let made = execute(["unshare", "--mount=" + holder, "--propagation", "private", "true"])
            try #require(made.status == 0, "\(made.stderr)")
            defer { umount2(holder, Int32(MNT_DETACH)) }
            let inside = execute(["nsenter", "--mount=" + holder, "readlink", "/proc/self/ns/mnt"]).stdout
            let bundle = pair.bundle(runtime, "c", script: "readlink /proc/self/ns/mnt; ls /") { spec in
                let namespaces = spec.linux?.namespaces ?? []
                spec.linux?.namespaces = namespaces.map {
                    $0.type == "mount" ? Spec.Namespace(type: "mount", path: holder) : $0
                }
            }
            let ran = pair.runtime(runtime, ["run", "--bundle", bundle, pair.id(runtime, "c")])
            #expect(ran.status == 0, "\(runtime): \(ran.stderr)")
            #expect(ran.stdout.hasPrefix(inside), "\(runtime): \(ran.stdout)")
            results[runtime] = ran
        }
        #expect(
            results[.berth]?.stdout.split(separator: "\n").dropFirst()
                == results[.runc]?.stdout.split(separator: "\n").dropFirst())
    }

    // MARK: No mount namespace

    /// Without a mount namespace the container runs in the runtime's own, chrooted into its rootfs. Each
    /// runtime runs inside a private mount namespace made for the test, which stands in for the host's:
    /// no mount of the test reaches the real host. runc refuses masked or read-only paths without a mount
    /// namespace; berth-runtime refuses them too.
    @Test func aConfigWithoutAMountNamespaceRunsInTheRuntimesMountNamespace() throws {
        let pair = Pair("nomnt")
        var results: [Implementation: [Substring]] = [:]
        for runtime in Implementation.allCases {
            let refusedBundle = pair.bundle(runtime, "masked", script: "true") { spec in
                let namespaces = spec.linux?.namespaces ?? []
                spec.linux?.namespaces = namespaces.filter { $0.type != "mount" }
            }
            let refused = pair.runtime(
                runtime, ["run", "--bundle", refusedBundle, pair.id(runtime, "masked")],
                prefix: ["unshare", "--mount", "--propagation", "private"])
            #expect(refused.status != 0, "\(runtime): masked paths without a mount namespace must be refused")

            let bundle = pair.bundle(
                runtime, "c", script: "readlink /proc/self/ns/mnt; ls /; cat /proc/self/cgroup > /dev/null; echo ok"
            ) { spec in
                let namespaces = spec.linux?.namespaces ?? []
                spec.linux?.namespaces = namespaces.filter { $0.type != "mount" }
                spec.linux?.maskedPaths = nil
                spec.linux?.readonlyPaths = nil
            }
            let id = pair.id(runtime, "c")
            // The stand-in host: its mount namespace, the container's output, and the mounts left under the
            // bundle once `run` has returned (and deleted the container).
            let script = """
                readlink /proc/self/ns/mnt; "$@"; echo status=$?; grep -c " \(bundle)/" /proc/self/mountinfo || true
                """
            let ran = execute([
                "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                runtime.binary, "--root", pair.stateRoot(runtime), "run", "--bundle", bundle, id,
            ])
            let lines = ran.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(ran.status == 0 && lines.count > 4, "\(runtime): \(ran.stdout) \(ran.stderr)")
            guard lines.count > 4 else { continue }
            #expect(lines[1] == lines[0], "\(runtime): the container's mount namespace is the runtime's")
            #expect(lines.contains("status=0"), "\(runtime): \(ran.stderr)")
            if runtime == .berth {
                // runc leaves its mounts in the host's namespace after the container is gone; berth-runtime
                // removes them at delete.
                #expect(lines.last { !$0.isEmpty } == "0", "\(ran.stdout)")
            }
            results[runtime] = Array(lines.dropFirst(2).prefix { !$0.hasPrefix("status=") })
        }
        #expect(results[.berth] != nil && results[.berth] == results[.runc], "\(results)")
    }

    // MARK: kill

    /// The caller of create ignores SIGTERM (a shell's `trap '' TERM`, nohup, some supervisors): the
    /// container's process still starts with every signal at its default, so a process that traps TERM
    /// and exits does exit on `kill ID TERM`, the container is stopped and `delete` removes it.
    @Test func aContainerWhoseProcessHandlesTheSignalStopsAfterKill() throws {
        let pair = Pair("kill")
        var results: [Implementation: String] = [:]
        let ignoring = ["sh", "-c", "trap '' HUP INT QUIT PIPE TERM USR1; exec \"$@\"", "sh"]
        for runtime in Implementation.allCases {
            let shared = pair.shared(runtime.rawValue)
            let bundle = pair.bundle(
                runtime, "c",
                script:
                    "trap 'exit 0' TERM; grep SigIgn /proc/self/status > /shared/i; mv /shared/i /shared/ignored; while :; do sleep 0.1; done"
            ) { spec in
                spec.mounts?.append(shared.mount)
            }
            let id = pair.id(runtime, "c")
            #expect(pair.runtime(runtime, ["create", "--bundle", bundle, id], prefix: ignoring).status == 0)
            let pid = try #require(pair.state(runtime, id)?.pid)
            #expect(pair.runtime(runtime, ["start", id], prefix: ignoring).status == 0)
            // The container says it has set its trap by moving the file into place; poll for it briefly.
            for _ in 0..<250 where !FileSystem.exists(shared.path + "/ignored") { usleep(20_000) }
            #expect(pair.runtime(runtime, ["kill", id, "TERM"], prefix: ignoring).status == 0)
            #expect(waitForExit(pid: pid, timeoutMilliseconds: 5_000), "\(runtime): the process must exit on TERM")
            #expect(pair.state(runtime, id)?.status == .stopped, "\(runtime)")
            let deleted = pair.runtime(runtime, ["delete", id])
            #expect(deleted.status == 0, "\(runtime): \(deleted.stderr)")
            // SigIgn as a hexadecimal mask. Signals 32 and 33 are glibc's own: runc's Go runtime leaves
            // 32 as the caller had it; berth-runtime resets every signal.
            let mask = (try? FileSystem.readString(shared.path + "/ignored")).flatMap {
                UInt64($0.dropFirst(8).prefix(16), radix: 16)
            }
            if runtime == .berth { #expect(mask == 0, "every signal at its default") }
            results[runtime] = mask.map { String($0 & 0x7fff_ffff, radix: 16) }
        }
        #expect(results[.berth] != nil && results[.berth] == results[.runc], "\(results)")
    }

    // MARK: User namespace with mappings

    /// Container root mapped to host uid 100000 (65536 ids), the rootfs owned by it: create, start, and the
    /// container runs with the mapping, under the default mounts.
    @Test func aContainerWithUserNamespaceMappingsStarts() throws {
        let pair = Pair("userns")
        var results: [Implementation: String] = [:]
        for runtime in Implementation.allCases {
            let shared = pair.shared(runtime.rawValue, owner: 100000)
            let bundle = pair.bundle(
                runtime, "c",
                script:
                    "sleep 0.5; id > /shared/out; cat /proc/self/uid_map /proc/self/gid_map >> /shared/out; ls /sys/class/net >> /shared/out"
            ) { spec in
                Self.useMappings(&spec)
                spec.mounts?.append(shared.mount)
            }
            Self.chownRootfs(bundle)
            let id = pair.id(runtime, "c")
            let created = pair.runtime(runtime, ["create", "--bundle", bundle, id])
            #expect(created.status == 0, "\(runtime): \(created.stderr)")
            #expect(pair.state(runtime, id)?.status == .created, "\(runtime)")
            let pid = pair.state(runtime, id)?.pid ?? 0
            let started = pair.runtime(runtime, ["start", id])
            #expect(started.status == 0, "\(runtime): \(started.stderr)")
            #expect(pair.state(runtime, id)?.status == .running, "\(runtime)")
            #expect(pid > 0 && waitForExit(pid: pid), "\(runtime)")
            results[runtime] = try? FileSystem.readString(shared.path + "/out")
        }
        #expect(results[.berth] != nil && results[.berth] == results[.runc], "\(results)")
    }

    // MARK: config.json changed after create

    /// What `create` read is what runs: config.json rewritten (another program, hostname, environment,
    /// then not even JSON) between create and start changes nothing, and state, kill and delete still work.
    @Test func aConfigChangedAfterCreateDoesNotChangeTheContainer() throws {
        let pair = Pair("changed")
        var results: [Implementation: String] = [:]
        for runtime in Implementation.allCases {
            let shared = pair.shared(runtime.rawValue)
            let bundle = pair.bundle(
                runtime, "c", script: "{ echo original; hostname; echo $GREETING; } > /shared/out; exec sleep 1000"
            ) { spec in
                spec.hostname = "original"
                let environment = spec.process?.env ?? []
                spec.process?.env = environment + ["GREETING=hello"]
                spec.mounts?.append(shared.mount)
            }
            let id = pair.id(runtime, "c")
            #expect(pair.runtime(runtime, ["create", "--bundle", bundle, id]).status == 0)
            var changed = try SpecLoader.load(bundle: bundle)
            changed.process?.args = ["/bin/sh", "-c", "echo changed > /shared/out"]
            changed.process?.env = ["GREETING=changed"]
            changed.hostname = "changed"
            changed.mounts = changed.mounts?.filter { $0.destination != "/shared" }
            pair.box.writeConfig(changed, bundle: bundle)
            #expect(pair.state(runtime, id)?.status == .created)
            try FileSystem.writeAtomically(bundle + "/config.json", Array("not json".utf8))
            let started = pair.runtime(runtime, ["start", id])
            #expect(started.status == 0, "\(runtime): \(started.stderr)")
            for _ in 0..<100
            where ((try? FileSystem.readString(shared.path + "/out")) ?? "").split(separator: "\n").count < 3 {
                usleep(20_000)
            }
            #expect(pair.state(runtime, id)?.status == .running, "\(runtime)")
            let pid = pair.state(runtime, id)?.pid ?? 0
            #expect(pair.runtime(runtime, ["kill", id, "KILL"]).status == 0)
            #expect(pid > 0 && waitForExit(pid: pid))
            let deleted = pair.runtime(runtime, ["delete", id])
            #expect(deleted.status == 0, "\(runtime): \(deleted.stderr)")
            results[runtime] = try? FileSystem.readString(shared.path + "/out")
        }
        #expect(results[.berth] == "original\noriginal\nhello\n")
        #expect(results[.berth] == results[.runc])
    }
}
