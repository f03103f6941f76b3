#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import CBerthShim
import Testing

@Suite("Lifecycle (root)", .enabled(if: isRealRoot && hasBusybox))
struct LifecycleTests {
    @Test func runPrintsAndReturnsTheExitStatus() {
        let box = Sandbox("run")
        let output = box.probe("echo hello from berth; exit 3")
        #expect(output.stdout == "hello from berth\n")
        #expect(output.status == 3)
        #expect(box.runtime(["list", "-q"]).stdout.isEmpty, "run must delete the container after it exits")
    }

    /// A container killed by a signal makes `run` exit with 128 + the signal, as a shell would report.
    /// (PID 1 of a pid namespace cannot be killed from inside it, so the kill comes from the host.)
    @Test func runReportsDeathBySignalLikeAShell() throws {
        let box = Sandbox("signal")
        let shared = box.directory + "/shared"
        try FileSystem.makeDirectories(shared)
        #expect(mkfifo(shared + "/ready", 0o600) == 0)
        let id = box.id()
        let bundle = box.bundle(script: "echo up > /shared/ready; exec sleep 1000") { spec in
            spec.mounts?.append(Spec.Mount(destination: "/shared", type: "bind", source: shared, options: ["rbind"]))
        }
        var pid: pid_t = 0
        let arguments = [runtimeBinary, "--root", box.root, "run", "--bundle", bundle, id]
        let spawned = withCStringArray(arguments) { argv in
            withCStringArray(["PATH=/usr/bin:/bin"]) { envp in
                posix_spawn(
                    &pid, runtimeBinary, nil, nil, UnsafeMutablePointer(mutating: argv),
                    UnsafeMutablePointer(mutating: envp))
            }
        }
        #expect(spawned == 0)
        // The container says it is up by writing the fifo: an event, not a sleep.
        #expect(try FileSystem.readString(shared + "/ready") == "up\n")
        #expect(box.runtime(["kill", id, "KILL"]).status == 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(Runtime.exitCode(status) == 128 + 9)
    }

    @Test func createStartStateKillDelete() throws {
        let box = Sandbox("life")
        let bundle = box.bundle(script: "echo started > /tmp/started; exec sleep 1000")
        let id = box.id()
        let pidFile = box.directory + "/pid"
        #expect(box.runtime(["create", "--bundle", bundle, "--pid-file", pidFile, id]).status == 0)
        let created = try #require(box.state(id))
        #expect(created.status == .created)
        #expect(created.pid > 0)
        #expect(created.bundle == bundle)
        #expect(try FileSystem.readString(pidFile) == String(created.pid))
        #expect(!FileSystem.exists(bundle + "/rootfs/tmp/started"), "the process must not run before start")

        #expect(box.runtime(["start", id]).status == 0)
        #expect(box.state(id)?.status == .running)
        let second = box.runtime(["start", id])
        #expect(second.status == 1)
        #expect(second.stderr.contains("cannot start container \(id): container is running"))

        let refused = box.runtime(["delete", id])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("running"))

        #expect(box.runtime(["pause", id]).status == 0)
        #expect(box.state(id)?.status == .paused)
        #expect(box.runtime(["resume", id]).status == 0)
        #expect(box.state(id)?.status == .running)

        let list = box.runtime(["list", "--format", "json"])
        #expect(list.stdout.contains("\"id\":\"\(id)\""))
        let ps = box.runtime(["ps", "--format", "json", id])
        #expect(ps.stdout == "[\(created.pid)]\n")

        #expect(box.runtime(["kill", id, "KILL"]).status == 0)
        #expect(waitForExit(pid: created.pid))
        #expect(box.state(id)?.status == .stopped)
        #expect(box.state(id)?.pid == 0)
        #expect(box.runtime(["delete", id]).status == 0)
        #expect(box.state(id) == nil)
        #expect(!FileSystem.exists(box.root + "/" + id))
    }

    @Test func errorsMatchRunc() {
        let box = Sandbox("errors")
        let missing = box.runtime(["state", "nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("container does not exist: nope"))
        #expect(box.runtime(["start", "nope"]).status == 1)
        #expect(box.runtime(["kill", "nope"]).status == 1)
        #expect(box.runtime(["delete", "nope"]).status == 1)

        let bundle = box.bundle(script: "sleep 1000")
        let id = box.id()
        #expect(box.runtime(["create", "--bundle", bundle, id]).status == 0)
        let again = box.runtime(["create", "--bundle", bundle, id])
        #expect(again.status == 1)
        #expect(again.stderr.contains("container with id exists: \(id)"))
        #expect(box.state(id)?.status == .created, "a failed create of a taken id must not touch the existing one")
        #expect(box.runtime(["delete", id]).status == 0, "a created container can be deleted without --force")
        let badID = box.runtime(["create", "--bundle", bundle, "../evil"])
        #expect(badID.status == 1)
        #expect(badID.stderr.contains("invalid container id"))
    }

    @Test func killAllSignalsEveryProcess() throws {
        let box = Sandbox("killall")
        let bundle = box.bundle(script: "sleep 1000 & sleep 1000 & wait")
        let id = box.id()
        #expect(box.runtime(["run", "--detach", "--bundle", bundle, id]).status == 0)
        let pid = try #require(box.state(id)?.pid)
        #expect(box.runtime(["kill", "--all", id, "9"]).status == 0)
        #expect(waitForExit(pid: pid))
        #expect(box.runtime(["delete", id]).status == 0)
    }

    @Test func logFileGetsJSONErrors() throws {
        let box = Sandbox("log")
        let log = box.directory + "/runtime.log"
        let output = execute([
            runtimeBinary, "--root", box.root, "--log", log, "--log-format", "json", "state", "ghost",
        ])
        #expect(output.status == 1)
        let text = try FileSystem.readString(log)
        #expect(text.contains("\"level\":\"error\""))
        #expect(text.contains("container does not exist: ghost"))
    }

    @Test func systemdCgroupFlagIsAClearError() {
        let box = Sandbox("systemd")
        let output = execute([runtimeBinary, "--root", box.root, "--systemd-cgroup", "list"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("--systemd-cgroup is not supported"))
    }

    @Test func specAndFeatures() throws {
        let box = Sandbox("spec")
        let dir = box.directory + "/spec"
        try FileSystem.makeDirectories(dir)
        #expect(execute([runtimeBinary, "spec", "--bundle", dir]).status == 0)
        let spec = try SpecLoader.load(bundle: dir)
        #expect(spec.process?.args == ["sh"])
        #expect(execute([runtimeBinary, "spec", "--bundle", dir]).status == 1, "spec must not overwrite config.json")
        let features = execute([runtimeBinary, "features"])
        #expect(features.status == 0)
        #expect(features.stdout.contains("\"ociVersionMax\" : \"1.2.0\""))
        #expect(features.stdout.contains("SCMP_ACT_NOTIFY"))
        #expect(execute([runtimeBinary, "--version"]).stdout.contains("berth-runtime version"))
    }
}
