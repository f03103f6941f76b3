#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import Testing

@Suite("Cycles and runc parity (root)", .enabled(if: isRealRoot && hasBusybox))
struct CycleAndParityTests {
    func cgroupEntries() -> Set<String> {
        var result = Set<String>()
        for controller in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
            for entry in (try? FileSystem.listDirectory("/sys/fs/cgroup/\(controller)/berth")) ?? []
            where FileSystem.isDirectory("/sys/fs/cgroup/\(controller)/berth/\(entry)") {
                result.insert("\(controller)/\(entry)")
            }
        }
        return result
    }

    /// Processes with an open descriptor, cwd or root under `path`.
    func processesHolding(_ path: String) -> [Int32] {
        var result: [Int32] = []
        for name in (try? FileSystem.listDirectory("/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid() else { continue }
            var links = ((try? FileSystem.listDirectory("/proc/\(pid)/fd")) ?? []).map { "/proc/\(pid)/fd/\($0)" }
            links += ["/proc/\(pid)/cwd", "/proc/\(pid)/root"]
            for link in links {
                var buffer = [CChar](repeating: 0, count: 4096)
                let n = readlink(link, &buffer, 4095)
                if n > 0, String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix(path) {
                    result.append(pid)
                    break
                }
            }
        }
        return result
    }

    /// 100 create/start/delete cycles leave no mount, cgroup, descriptor, process or state behind.
    @Test func hundredCyclesLeaveNothingBehind() throws {
        let box = Sandbox("cycles")
        let bundle = box.bundle(script: "true")
        var inits: [Int32] = []
        for index in 0..<100 {
            let id = "\(box.prefix)-\(index)"
            let created = box.runtime(["create", "--bundle", bundle, id])
            #expect(created.status == 0, "cycle \(index): \(created.stderr)")
            let pid = box.state(id)?.pid ?? 0
            inits.append(pid)
            #expect(box.runtime(["start", id]).status == 0)
            #expect(waitForExit(pid: pid))
            #expect(box.runtime(["delete", id]).status == 0)
        }
        #expect(mounts(under: box.directory).isEmpty)
        #expect(cgroupEntries().filter { $0.contains(box.prefix) }.isEmpty)
        // Other suites run beside this one, so processes and descriptors are checked per container: every
        // init is gone, and no process anywhere still holds an open descriptor into a bundle of this test.
        // (An exited init whose parent, the host's pid 1 here, has not reaped it yet is a zombie: gone.)
        #expect(inits.allSatisfy { pid in pid > 0 && (ProcessStat.read(pid: pid).map { $0.state == "Z" } ?? true) })
        #expect(processesHolding(box.directory).isEmpty)
        // The compiled-seccomp cache stays (one file per distinct profile); no container's state does.
        #expect(((try? FileSystem.listDirectory(box.root)) ?? []).filter { $0 != "@seccomp-cache" } == [])
    }

    /// `run` blocks the signals it forwards to the container (and the test runner's threads block others);
    /// none of that reaches the container's process.
    @Test func theContainersProcessStartsWithNoSignalBlocked() throws {
        let box = Sandbox("sigmask")
        let bundle = box.bundle(script: "grep SigBlk /proc/self/status")
        let ran = box.runtime(["run", "--bundle", bundle, box.id("run")])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("SigBlk:\t0000000000000000"), "\(ran.stdout)")
    }

    /// The same bundle under runc and berth-runtime: what the container sees is the same.
    @Test(.enabled(if: FileSystem.exists("/usr/sbin/runc") || FileSystem.exists("/usr/bin/runc")))
    func sameObservableResultsAsRunc() throws {
        let box = Sandbox("parity")
        let script = """
            echo pid=$$; hostname; id; umask; ulimit -n; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
            awk '{print $5, $6}' /proc/self/mountinfo | grep -v '^/sys/fs/cgroup' | sort; ls /dev | tr '\\n' ' '; echo; \
            cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/class/net
            """
        let bundle = box.bundle(script: script) { spec in
            spec.hostname = "parity"
            var memory = Spec.Memory(); memory.limit = 128 << 20
            var resources = Spec.Resources(); resources.memory = memory
            spec.linux?.resources = resources
            spec.process?.capabilities = Spec.Capabilities(
                bounding: DefaultSpec.defaultCapabilities,
                effective: DefaultSpec.defaultCapabilities,
                permitted: DefaultSpec.defaultCapabilities)
        }
        var spec = try SpecLoader.load(bundle: bundle)
        spec.linux?.cgroupsPath = "/\(box.prefix)/runc"
        box.writeConfig(spec, bundle: bundle)
        let runc = execute([
            "runc", "--root", box.directory + "/runc-state", "run", "--bundle", bundle, box.prefix + "-runc",
        ])
        spec.linux?.cgroupsPath = "/\(box.prefix)/berth"
        box.writeConfig(spec, bundle: bundle)
        let berth = box.runtime(["run", "--bundle", bundle, box.id("berth")])
        for controller in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
            rmdir("/sys/fs/cgroup/\(controller)/\(box.prefix)")
        }
        #expect(runc.status == 0, "\(runc.stderr)")
        #expect(berth.status == 0, "\(berth.stderr)")
        #expect(berth.stdout == runc.stdout)
    }
}
