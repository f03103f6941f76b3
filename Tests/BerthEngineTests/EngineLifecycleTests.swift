#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// The engine as a docker user drives it: `berth run/ps/logs/stop/rm/exec …` on real containers made
/// from an image the suite builds, under berth-runtime and runc.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"))
final class EngineLifecycleTests {
    let box: EngineBox

    init() throws { box = try EngineBox("lifecycle") }
    deinit { box.tearDown() }

    @Test func runPrintsBothStreamsAndExitsWithTheContainersStatus() throws {
        let out = try box.berth([
            "run", "--rm", "--network", "none", box.image, "sh", "-c", "echo out; echo err >&2; exit 3",
        ])
        #expect(out.status == .exited(3))
        #expect(out.stdoutText == "out\n")
        #expect(out.stderrText == "err\n")
        // --rm: nothing left to list.
        #expect(try box.berth(["ps", "-aq"]).stdoutText.isEmpty)
    }

    @Test func theImageConfigIsTheDefaultAndOptionsOverrideIt() throws {
        let fromImage = try box.berth([
            "run", "--rm", "--network", "none", box.image, "sh", "-c", "echo $FROM_IMAGE $HOSTNAME; pwd; id -u",
        ])
        let lines = fromImage.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(fromImage.stderrText)")
        #expect(lines.first?.hasPrefix("yes ") == true)
        #expect(lines.dropFirst().first == "/srv")
        #expect(lines.last == "0")
        let overridden = try box.berth([
            "run", "--rm", "--network", "none", "-e", "FROM_IMAGE=no", "-e", "EXTRA=1", "-w", "/tmp",
            "-h", "myhost", "-u", "1000:1000", box.image, "sh", "-c",
            "echo $FROM_IMAGE $EXTRA; pwd; hostname; id -u; id -g",
        ])
        #expect(overridden.stdoutText == "no 1\n/tmp\nmyhost\n1000\n1000\n", "\(overridden.stderrText)")
        let entrypoint = try box.berth([
            "run", "--rm", "--network", "none", "--entrypoint", "/bin/echo", box.image, "from", "entrypoint",
        ])
        #expect(entrypoint.stdoutText == "from entrypoint\n")
    }

    @Test(arguments: ["berth", "runc", "crun"])
    func programsThatCannotRunExitAsDocker(runtime: String) throws {
        let missing = try box.berth([
            "run", "--rm", "--runtime", runtime, "--network", "none", box.image, "no-such-program",
        ])
        #expect(missing.status == .exited(127))
        #expect(missing.stderrText.contains("no-such-program"))
        let notExecutable = try box.berth([
            "run", "--rm", "--runtime", runtime, "--network", "none", box.image, "/etc/passwd",
        ])
        #expect(notExecutable.status == .exited(126))
        let badImage = try box.berth(["run", "--rm", "--pull", "never", "--network", "none", "no/such:image", "true"])
        #expect(badImage.status == .exited(125))
        #expect(badImage.stderrText.contains("No such image"))
        // Nothing half-made stays behind.
        #expect(try box.berth(["ps", "-aq"]).stdoutText.isEmpty)
    }

    @Test(arguments: ["berth", "runc", "crun"])
    func theSameContainerRunsUnderEachRuntime(runtime: String) throws {
        let out = try box.berth([
            "run", "--rm", "--runtime", runtime, "--network", "none", box.image,
            "sh", "-c", "echo $FROM_IMAGE; cat /etc/hostname; ls /proc/1/ns/net >/dev/null && echo ns",
        ])
        #expect(out.status == .exited(0), "\(out.stderrText)")
        let lines = out.stdoutText.split(separator: "\n")
        #expect(lines.count == 3 && lines[0] == "yes" && lines[2] == "ns", "\(out.stdoutText)")
    }

    @Test func detachedContainersLogAndStopWithTheirSignal() throws {
        let started = try box.berth([
            "run", "-d", "--name", "looper", "--network", "none", box.image, "sh", "-c",
            "trap 'echo got-term; exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done",
        ])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        #expect(started.stdoutText.count == 65)
        #expect(try box.eventually { try box.berth(["logs", "looper"]).stdoutText.contains("line 3") })
        #expect(try box.berth(["ps", "--format", "{{.Names}} {{.State}}"]).stdoutText == "looper running\n")
        let tail = try box.berth(["logs", "--tail", "2", "looper"]).stdoutText.split(separator: "\n")
        #expect(tail.count == 2)
        let stopped = try box.berth(["stop", "looper"])
        #expect(stopped.stdoutText == "looper\n")
        #expect(try box.inspect("looper", "{{.State.Status}} {{.State.ExitCode}}") == "exited 0")
        #expect(try box.berth(["logs", "looper"]).stdoutText.hasSuffix("got-term\n"))
        // A program that ignores SIGTERM is killed after the timeout: 137.
        _ = try box.berth([
            "run", "-d", "--name", "stubborn", "--network", "none", box.image, "sh", "-c", "trap '' TERM; sleep 1000",
        ])
        _ = try box.berth(["stop", "-t", "1", "stubborn"])
        #expect(try box.inspect("stubborn", "{{.State.ExitCode}}") == "137")
        #expect(try box.berth(["rm", "looper", "stubborn"]).status == .exited(0))
    }

    @Test func logsFollowUntilTheContainerExitsAndKeepTimestamps() throws {
        _ = try box.berth([
            "run", "-d", "--name", "follow", "--network", "none", box.image, "sh", "-c",
            "for i in 1 2 3; do echo n$i; sleep 0.2; done",
        ])
        let followed = try box.berth(["logs", "-f", "-t", "follow"])
        let lines = followed.stdoutText.split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ").last.map(String.init) ?? "" } == ["n1", "n2", "n3"])
        #expect(lines.allSatisfy { $0.first?.isNumber == true && $0.contains("Z ") })
        let raw = try FileSystem.readString(
            "\(box.root)/containers/\(try box.inspect("follow", "{{.Id}}"))/\(try box.inspect("follow", "{{.Id}}"))-json.log"
        )
        #expect(raw.hasPrefix(#"{"log":"n1\n","stream":"stdout","time":""#))
        _ = try box.berth(["rm", "follow"])
    }

    @Test func logsRotateAtTheirMaximumSize() throws {
        _ = try box.berth([
            "run", "--name", "rotate", "--network", "none", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
            box.image, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo entry-$i; i=$((i+1)); done",
        ])
        let id = try box.inspect("rotate", "{{.Id}}")
        let files = try FileSystem.listDirectory("\(box.root)/containers/\(id)").filter { $0.contains("-json.log") }
            .sorted()
        #expect(files == ["\(id)-json.log", "\(id)-json.log.1", "\(id)-json.log.2"])
        for file in files {
            var info = stat()
            stat("\(box.root)/containers/\(id)/\(file)", &info)
            #expect(info.st_size <= 2000)
        }
        let logs = try box.berth(["logs", "rotate"]).stdoutText.split(separator: "\n")
        #expect(logs.last == "entry-299")
        #expect(logs.count < 300)
        _ = try box.berth(["rm", "rotate"])
    }

    @Test func namesAreUniqueAndContainersCanBeRenamed() throws {
        _ = try box.berth(["create", "--name", "first", "--network", "none", box.image, "true"])
        let clash = try box.berth(["create", "--name", "first", "--network", "none", box.image, "true"])
        #expect(clash.status == .exited(125))
        #expect(clash.stderrText.contains("Conflict. The container name \"/first\" is already in use"))
        #expect(try box.berth(["rename", "first", "second"]).status == .exited(0))
        #expect(try box.inspect("second", "{{.Name}} {{.State.Status}}") == "/second created")
        let bad = try box.berth(["create", "--name", "-bad", "--network", "none", box.image, "true"])
        #expect(bad.status != .exited(0))
        _ = try box.berth(["rm", "second"])
    }

    /// The name index (`names/NAME` → ID) behaves as the records say: a renamed container's old name is
    /// free, a removed one's too, an engine whose index is missing (made before it) rebuilds it and still
    /// refuses a clash, and a link left pointing at a container that is gone is taken over.
    @Test func theNameIndexFollowsRenamesRemovalsAndOlderEngines() throws {
        _ = try box.berth(["create", "--name", "keeper", "--network", "none", box.image, "true"])
        #expect(try box.berth(["rename", "keeper", "kept"]).status == .exited(0))
        #expect(
            try box.berth(["create", "--name", "keeper", "--network", "none", box.image, "true"]).status == .exited(0))
        #expect(try box.inspect("kept", "{{.Name}}") == "/kept")
        _ = try box.berth(["rm", "keeper"])
        #expect(
            try box.berth(["create", "--name", "keeper", "--network", "none", box.image, "true"]).status == .exited(0))
        // As an engine from before the index left things: no index at all.
        _ = try ChildProcess.run("/bin/rm", arguments: ["rm", "-rf", box.root + "/names"], environment: [])
        let clash = try box.berth(["create", "--name", "kept", "--network", "none", box.image, "true"])
        #expect(clash.status == .exited(125), "\(clash.stderrText)")
        #expect(clash.stderrText.contains("The container name \"/kept\" is already in use"))
        var link = stat()
        #expect(lstat(box.root + "/names/keeper", &link) == 0, "the index is built again")
        // A stale link: its container's record is gone.
        #expect(symlink(String(repeating: "ab", count: 32), box.root + "/names/ghost") == 0)
        #expect(
            try box.berth(["create", "--name", "ghost", "--network", "none", box.image, "true"]).status == .exited(0))
        #expect(try box.inspect("ghost", "{{.Name}}") == "/ghost")
        _ = try box.berth(["rm", "kept", "keeper", "ghost"])
        #expect(((try? FileSystem.listDirectory(box.root + "/names")) ?? ["?"]).isEmpty)
    }

    /// Starting and stopping write only the container's own record, under its own lock: they go on while
    /// another process holds the engine-wide lock (names) or another container's lock; a create, which
    /// claims a name, waits for the engine lock.
    @Test func startAndStopTakeOnlyTheirContainersLock() throws {
        _ = try box.berth(["create", "--name", "aside", "--network", "none", box.image, "sleep", "100"])
        _ = try box.berth(["create", "--name", "other", "--network", "none", box.image, "true"])
        let otherID = try box.inspect("other", "{{.Id}}")
        let engineLock = open(box.root + "/engine.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        let otherLock = open(box.root + "/containers/\(otherID)/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        #expect(flock(engineLock, LOCK_EX) == 0 && flock(otherLock, LOCK_EX) == 0)
        // Bounded: an engine that still took the engine lock would wait forever.
        func bounded(_ arguments: [String]) throws -> ChildProcess.Output {
            try ChildProcess.run(
                "/usr/bin/timeout",
                arguments: ["timeout", "30", box.berth] + arguments.prefix(1) + ["--root", box.root]
                    + arguments.dropFirst(),
                environment: [
                    "BERTH_RUN=\(box.run)", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ])
        }
        let started = try bounded(["start", "aside"])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        let stopped = try bounded(["stop", "-t", "0", "aside"])
        #expect(stopped.status == .exited(0), "\(stopped.stderrText)")
        let created = try ChildProcess.run(
            "/usr/bin/timeout",
            arguments: [
                "timeout", "2", box.berth, "create", "--root", box.root, "--network", "none", box.image, "true",
            ],
            environment: ["BERTH_RUN=\(box.run)"])
        #expect(created.status == .exited(124), "a create claims a name under the engine lock")
        close(otherLock)
        close(engineLock)
        #expect(try box.inspect("aside", "{{.State.Status}}") == "exited")
        _ = try box.berth(["rm", "-f", "aside", "other"])
    }

    @Test func execRunsInTheContainerWithItsOptionsAndStatus() throws {
        _ = try box.berth(["run", "-d", "--name", "target", "--network", "none", box.image, "sleep", "1000"])
        let plain = try box.berth(["exec", "target", "sh", "-c", "echo $FROM_IMAGE; exit 4"])
        #expect(plain.status == .exited(4))
        #expect(plain.stdoutText == "yes\n")
        let options = try box.berth([
            "exec", "-e", "X=1", "-w", "/tmp", "-u", "1000:1000", "target", "sh", "-c", "echo $X; pwd; id -u",
        ])
        #expect(options.stdoutText == "1\n/tmp\n1000\n")
        let input = try box.berth(["exec", "-i", "target", "cat"], input: "through stdin\n")
        #expect(input.stdoutText == "through stdin\n")
        let missing = try box.berth(["exec", "target", "no-such-program"])
        #expect(missing.status == .exited(126))
        // A terminal, driven through script(1)'s pty.
        let tty = try ChildProcess.run(
            "/usr/bin/script",
            arguments: [
                "script", "-eqc", "\(box.berth) exec --root \(box.root) -it target sh -c 'tty; exit 5'", "/dev/null",
            ],
            environment: ["BERTH_RUN=\(box.run)", "PATH=/usr/bin:/bin"])
        #expect(tty.status == .exited(5))
        #expect(tty.stdoutText.contains("/dev/pts/"))
        _ = try box.berth(["rm", "-f", "target"])
        let stopped = try box.berth(["exec", "target", "true"])
        #expect(stopped.status == .exited(125))
    }

    @Test func runWithATerminalPassesTheStatusThrough() throws {
        let tty = try ChildProcess.run(
            "/usr/bin/script",
            arguments: [
                "script", "-eqc",
                "\(box.berth) run --root \(box.root) --rm -it --network none \(box.image) sh -c 'tty; exit 7'",
                "/dev/null",
            ],
            environment: ["BERTH_RUN=\(box.run)", "PATH=/usr/bin:/bin"])
        #expect(tty.status == .exited(7))
        #expect(tty.stdoutText.contains("/dev/pts/0"))
    }

    @Test func pauseFreezesAndUnpauseThaws() throws {
        _ = try box.berth(["run", "-d", "--name", "frozen", "--network", "none", box.image, "sleep", "1000"])
        #expect(try box.berth(["pause", "frozen"]).status == .exited(0))
        #expect(try box.inspect("frozen", "{{.State.Status}} {{.State.Paused}}") == "paused true")
        #expect(try box.berth(["ps", "--format", "{{.Status}}"]).stdoutText.contains("(Paused)"))
        #expect(try box.berth(["unpause", "frozen"]).status == .exited(0))
        #expect(try box.inspect("frozen", "{{.State.Status}}") == "running")
        let running = try box.berth(["rm", "frozen"])
        #expect(running.status != .exited(0))
        #expect(running.stderrText.contains("stop the container before removing or force remove"))
        #expect(try box.berth(["rm", "-f", "frozen"]).status == .exited(0))
    }

    @Test func restartPoliciesRestartWithBackOffUntilTheLimit() throws {
        _ = try box.berth([
            "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "--network", "none", box.image, "sh", "-c",
            "exit 1",
        ])
        let settled = try box.eventually {
            try box.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
        }
        let seen = try box.inspect("flaky", "{{.RestartCount}} {{.State.Status}} {{.State.Error}}")
        #expect(settled, "\(seen)")
        // `always` restarts a clean exit too, and `stop` ends it for good.
        _ = try box.berth([
            "run", "-d", "--name", "always", "--restart", "always", "--network", "none", box.image, "sh", "-c",
            "sleep 0.1",
        ])
        #expect(try box.eventually { Int(try box.inspect("always", "{{.RestartCount}}")) ?? 0 >= 2 })
        _ = try box.berth(["stop", "always"])
        let count = try box.inspect("always", "{{.RestartCount}}")
        #expect(try box.inspect("always", "{{.State.Status}}") == "exited")
        #expect(try box.inspect("always", "{{.RestartCount}}") == count)
        let conflicting = try box.berth(["run", "--rm", "--restart", "always", "--network", "none", box.image, "true"])
        #expect(conflicting.status == .exited(125))
        _ = try box.berth(["rm", "-f", "flaky", "always"])
    }

    /// No engine process runs between the commands: exits that happen meanwhile are learned from what
    /// the monitor left; a monitor killed with SIGKILL is reported on its container.
    @Test func exitsWhileNoEngineRunsAreLearnedAndAKilledMonitorIsReported() throws {
        _ = try box.berth([
            "run", "-d", "--name", "short", "--network", "none", box.image, "sh", "-c", "sleep 0.3; exit 9",
        ])
        _ = try box.berth([
            "run", "-d", "--name", "long", "--network", "none", box.image, "sh", "-c",
            "while true; do echo tick; sleep 0.05; done",
        ])
        #expect(try box.berth(["wait", "short"]).stdoutText == "9\n")
        #expect(try box.inspect("short", "{{.State.Status}} {{.State.ExitCode}}") == "exited 9")
        let monitor = try box.inspect("long", "{{.State.Pid}}")
        #expect(Int(monitor) ?? 0 > 0)
        let id = try box.inspect("long", "{{.Id}}")
        let record = try FileSystem.readString("\(box.root)/containers/\(id)/container.json")
        guard let range = record.firstRange(of: "\"monitorPid\":") else {
            throw TestFailure("no monitorPid in \(record)")
        }
        let monitorPid = pid_t(record[range.upperBound...].prefix { $0.isNumber }) ?? 0
        #expect(monitorPid > 0)
        kill(monitorPid, SIGKILL)
        #expect(try box.eventually { try box.inspect("long", "{{.State.Error}}").contains("monitor is gone") })
        #expect(try box.inspect("long", "{{.State.Status}}") == "running")
        #expect(try box.berth(["rm", "-f", "long"]).status == .exited(0))
        #expect(try box.berth(["ps", "-a", "--format", "{{.Names}}"]).stdoutText == "short\n")
        _ = try box.berth(["rm", "short"])
    }

    /// Twenty containers, and CLI processes killed with SIGKILL in the middle of an attached `run` and a
    /// `logs -f`: every container keeps running and logging under its monitor, and the exits that
    /// happen while no berth process runs are reported with their codes afterwards.
    @Test func twentyContainersOutliveKilledCommandsAndTheirExitsAreLearnedLater() throws {
        let box = self.box
        // The finishers exit when the test says so (a file in a directory they all mount), after the kills.
        let signal = FileSystem.parent(of: box.root) + "/signal"
        try FileSystem.makeDirectories(signal, mode: 0o755)
        for i in 0..<10 {
            let ticker = try box.berth([
                "run", "-d", "--name", "ticker\(i)", "--network", "none", box.image, "sh", "-c",
                "while true; do echo tick; sleep 0.05; done",
            ])
            #expect(ticker.status == .exited(0), "\(ticker.stderrText)")
            let finisher = try box.berth([
                "run", "-d", "--name", "finisher\(i)", "--network", "none", "-v", "\(signal):/signal", box.image,
                "sh", "-c", "until [ -e /signal/go ]; do sleep 0.05; done; exit \(i + 1)",
            ])
            #expect(finisher.status == .exited(0), "\(finisher.stderrText)")
        }
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(null) }
        let environment = ["BERTH_RUN=\(box.run)", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        let attached = try ChildProcess.spawn(
            box.berth,
            arguments: [
                box.berth, "run", "--root", box.root, "--name", "attached", "--network", "none",
                box.image, "sh", "-c", "while true; do echo attached; sleep 0.05; done",
            ],
            environment: environment, fileDescriptors: [0: null, 1: null, 2: null])
        let follower = try ChildProcess.spawn(
            box.berth, arguments: [box.berth, "logs", "--root", box.root, "-f", "ticker0"],
            environment: environment, fileDescriptors: [0: null, 1: null, 2: null])
        #expect(try box.eventually { try box.inspect("attached", "{{.State.Status}}") == "running" })
        kill(attached, SIGKILL)
        kill(follower, SIGKILL)
        _ = try ChildProcess.wait(attached)
        _ = try ChildProcess.wait(follower)
        // No berth process runs now; the finishers exit meanwhile.
        try FileSystem.writeAtomically(signal + "/go", [])
        let logSize = { (name: String) throws -> Int in
            let id = try box.inspect(name, "{{.Id}}")
            var info = stat()
            return stat("\(box.root)/containers/\(id)/\(id)-json.log", &info) == 0 ? Int(info.st_size) : 0
        }
        let before = try (0..<10).map { try logSize("ticker\($0)") } + [try logSize("attached")]
        usleep(2_500_000)  // Time passing with nothing running is the point here: no event to await.
        let after = try (0..<10).map { try logSize("ticker\($0)") } + [try logSize("attached")]
        #expect(zip(before, after).allSatisfy { $0 < $1 }, "logs grew: \(before) → \(after)")
        let states = try box.berth(["ps", "-a", "--format", "{{.Names}} {{.State}}"]).stdoutText.split(separator: "\n")
        #expect(states.count == 21)
        #expect(states.filter { $0.hasSuffix(" running") }.count == 11, "\(states)")
        for i in 0..<10 {
            #expect(
                try box.eventually {
                    try box.inspect("finisher\(i)", "{{.State.Status}} {{.State.ExitCode}}") == "exited \(i + 1)"
                })
        }
        _ = try box.berth(["rm", "-f", "attached"] + (0..<10).flatMap { ["ticker\($0)", "finisher\($0)"] })
    }

    /// A number field of a container's record (`"monitorPid":`).
    func recordField(_ name: String, _ field: String) throws -> Int32 {
        let id = try box.inspect(name, "{{.Id}}")
        let record = try FileSystem.readString("\(box.root)/containers/\(id)/container.json")
        guard let range = record.firstRange(of: "\"\(field)\":") else { throw TestFailure("no \(field) in \(record)") }
        return Int32(record[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// A reboot as the engine sees it: monitors and containers gone without a trace of their exit, the
    /// run directory (a tmpfs) empty, rootfs mounts gone, and another boot ID. The first command after
    /// it restarts what docker's restore restarts, and a container left stopped starts again by hand.
    @Test func afterARebootTheRestartPoliciesBringContainersBack() throws {
        let names = ["always-running", "always-stopped", "unless-running", "unless-stopped", "plain"]
        for name in names {
            let policy = name.hasPrefix("always") ? "always" : name.hasPrefix("unless") ? "unless-stopped" : "no"
            let run = try box.berth([
                "run", "-d", "--name", name, "--restart", policy, "--network", "none", box.image,
                "sh", "-c", "echo kept > /kept; exec sleep 1000",
            ])
            #expect(run.status == .exited(0), "\(run.stderrText)")
        }
        for name in ["always-stopped", "unless-stopped"] { _ = try box.berth(["stop", "-t", "0", name]) }
        #expect(
            try box.eventually { try box.berth(["exec", "always-running", "cat", "/kept"]).stdoutText == "kept\n" })
        // The reboot.
        for name in ["always-running", "unless-running", "plain"] {
            let monitor = try recordField(name, "monitorPid"), initPid = try recordField(name, "pid")
            #expect(monitor > 0 && initPid > 0)
            kill(monitor, SIGKILL)
            kill(initPid, SIGKILL)
            #expect(
                try box.eventually { !FileSystem.exists("/proc/\(initPid)") && !FileSystem.exists("/proc/\(monitor)") })
        }
        for id in try FileSystem.listSubdirectories("\(box.root)/containers") {
            _ = umount2("\(box.root)/containers/\(id)/rootfs", Int32(MNT_DETACH))
        }
        for directory in ["runtime", "m"] { try FileSystem.removeTree("\(box.run)/\(directory)") }
        try FileSystem.writeAtomically("\(box.root)/boot-id", Array("an-earlier-boot".utf8))

        let states = try box.berth(["ps", "-a", "--format", "{{.Names}} {{.State}}"]).stdoutText
        let byName = Dictionary(
            uniqueKeysWithValues: states.split(separator: "\n").map { line in
                (String(line.split(separator: " ")[0]), String(line.split(separator: " ").last ?? ""))
            })
        #expect(
            byName == [
                "always-running": "running", "always-stopped": "running", "unless-running": "running",
                "unless-stopped": "exited", "plain": "exited",
            ], "\(states)")
        #expect(try box.inspect("plain", "{{.State.ExitCode}}") == "255")
        // What the container wrote survived (its upper directory), and the pass ran once for this boot.
        #expect(try box.berth(["exec", "always-running", "cat", "/kept"]).stdoutText == "kept\n")
        let boot = try FileSystem.readString("/proc/sys/kernel/random/boot_id").trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(try FileSystem.readString("\(box.root)/boot-id") == boot)
        #expect(try box.berth(["start", "plain"]).status == .exited(0))
        #expect(try box.eventually { try box.berth(["exec", "plain", "cat", "/kept"]).stdoutText == "kept\n" })
        _ = try box.berth(["rm", "-f"] + names)
    }

    @Test func manyRunAndRemoveCyclesLeaveNothingBehind() throws {
        let mountsBefore = try FileSystem.readString("/proc/self/mountinfo").split(separator: "\n").count
        for i in 0..<20 {
            let out = try box.berth(["run", "--rm", "--network", "none", box.image, "echo", "cycle \(i)"])
            #expect(out.stdoutText == "cycle \(i)\n")
        }
        #expect(try box.berth(["ps", "-aq"]).stdoutText.isEmpty)
        #expect(try FileSystem.listSubdirectories("\(box.root)/containers").isEmpty)
        let leftovers = try FileSystem.readString("/proc/self/mountinfo").split(separator: "\n").filter {
            $0.contains(box.root)
        }
        #expect(leftovers.isEmpty)
        #expect(try FileSystem.readString("/proc/self/mountinfo").split(separator: "\n").count <= mountsBefore)
        let runtimeState = ((try? FileSystem.listSubdirectories("\(box.run)/runtime/berth")) ?? []).filter {
            $0 != "@seccomp-cache"
        }
        #expect(runtimeState.isEmpty)
        let cgroups = (try? FileSystem.listSubdirectories("/sys/fs/cgroup/pids/berth")) ?? []
        #expect(cgroups.allSatisfy { !FileSystem.exists("\(box.root)/containers/\($0)") })
    }

    /// docker wait on a `--rm` container gives its status although the container is gone by then.
    @Test func waitGivesTheStatusOfARemovedContainer() throws {
        let id = try box.berth(["run", "-d", "--rm", "--network", "none", box.image, "sh", "-c", "sleep 0.3; exit 7"])
            .stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let waited = try box.berth(["wait", id])
        #expect(waited.stdoutText == "7\n" && waited.status == .exited(0), "\(waited.stderrText)")
        #expect(try box.eventually { !FileSystem.exists("\(box.root)/containers/\(id)") })
    }

    @Test func theMonitorDeletesTheRuntimesContainerAtTheExitAndAStartAtOnceReusesTheID() throws {
        let id = try box.berth(["run", "-d", "--network", "none", box.image, "sh", "-c", "echo once"]).stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try box.berth(["wait", id]).stdoutText == "0\n")
        // No engine command deletes it: the monitor does, right after it wrote the exit (which is all
        // that `wait` waits for), and marks the exit file when the runtime has said yes.
        #expect(
            try box.eventually {
                try FileSystem.readString("\(box.root)/containers/\(id)/exit.json").contains("\"runtimeDeleted\":true")
            })
        #expect(!FileSystem.exists("\(box.run)/runtime/berth/\(id)"))
        // Each start gives the runtime the same ID again, right after the previous run's monitor deleted it.
        for _ in 0..<5 {
            let again = try box.berth(["start", "-a", id])
            #expect(again.stdoutText == "once\n" && again.status == .exited(0), "\(again.stderrText)")
        }
        _ = try box.berth(["rm", id])
        #expect(!FileSystem.exists("\(box.run)/runtime/berth/\(id)"))
    }

    @Test func healthchecksGoFromUnhealthyToHealthyAsTheCheckSays() throws {
        _ = try box.berth([
            "run", "-d", "--name", "checked", "--network", "none", "--health-cmd", "test -f /tmp/ok",
            "--health-interval", "100ms", "--health-retries", "2", box.image, "sleep", "1000",
        ])
        #expect(try box.eventually { try box.inspect("checked", "{{.State.Health.Status}}") == "unhealthy" })
        #expect(try box.berth(["exec", "checked", "touch", "/tmp/ok"]).status == .exited(0))
        #expect(
            try box.eventually {
                try box.inspect("checked", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}") == "healthy 0"
            })
        #expect(try box.berth(["ps", "--format", "{{.Status}}"]).stdoutText.contains("(healthy)"))
        let log = try box.inspect("checked", "{{json .State.Health.Log}}")
        #expect(log.components(separatedBy: "\"ExitCode\"").count - 1 <= 5)
        _ = try box.berth(["rm", "-f", "checked"])
        let conflicting = try box.berth([
            "run", "--rm", "--network", "none", "--no-healthcheck", "--health-cmd", "true", box.image, "true",
        ])
        #expect(conflicting.status != .exited(0))
    }

    @Test func statsAndTopShowTheContainersProcesses() throws {
        _ = try box.berth(["run", "-d", "--name", "observed", "--network", "none", box.image, "sleep", "1000"])
        let stats = try box.berth(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "observed"])
        #expect(stats.stdoutText == "observed 1\n", "\(stats.stderrText)")
        let top = try box.berth(["top", "observed"]).stdoutText.split(separator: "\n")
        #expect(top.first?.contains("PID") == true)
        #expect(top.count == 2 && top[1].hasSuffix("sleep 1000"))
        _ = try box.berth(["rm", "-f", "observed"])
        #expect(try box.berth(["top", "observed"]).status != .exited(0))
    }

    @Test func volumesBindMountsAndTmpfsAreWhatTheContainerSees() throws {
        let host = box.root + "/../bind-source"
        try FileSystem.makeDirectories(host, mode: 0o755)
        try FileSystem.writeAtomically(host + "/from-host", Array("host file\n".utf8))
        // A named volume is created on first use and filled from the image's content at its path.
        let first = try box.berth([
            "run", "--rm", "--network", "none", "-v", "data:/etc", "-v", "\(host):/mnt/host:ro", "--tmpfs",
            "/scratch:size=1m",
            box.image, "sh", "-c",
            "ls /etc/passwd; cat /mnt/host/from-host; echo kept > /etc/written; touch /mnt/host/x 2>/dev/null || echo ro; grep /scratch /proc/mounts | cut -d' ' -f3",
        ])
        #expect(first.stdoutText == "/etc/passwd\nhost file\nro\ntmpfs\n", "\(first.stderrText)")
        let second = try box.berth([
            "run", "--rm", "--network", "none", "-v", "data:/etc", box.image, "cat", "/etc/written",
        ])
        #expect(second.stdoutText == "kept\n")
        #expect(try box.berthNoun("volume", ["ls", "-q"]).stdoutText == "data\n")
        // In use: refused.
        _ = try box.berth(["create", "--name", "holder", "--network", "none", "-v", "data:/data", box.image, "true"])
        let inUse = try box.berthNoun("volume", ["rm", "data"])
        #expect(inUse.status != .exited(0))
        #expect(inUse.stderrText.contains("volume is in use"))
        _ = try box.berth(["rm", "holder"])
        #expect(try box.berthNoun("volume", ["rm", "data"]).status == .exited(0))
        // An anonymous volume goes with --rm.
        _ = try box.berth(["run", "--rm", "--network", "none", "-v", "/anon", box.image, "true"])
        #expect(try box.berthNoun("volume", ["ls", "-q"]).stdoutText.isEmpty)
    }

    @Test func resourceAndSecurityOptionsReachTheContainer() throws {
        let out = try box.berth([
            "run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50", "--read-only", "--cap-drop",
            "ALL",
            "--init", box.image, "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; touch /x 2>/dev/null || echo read-only; grep CapEff /proc/self/status; cat /proc/1/comm",
        ])
        let lines = out.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(out.stdoutText) \(out.stderrText)")
        #expect(lines.first == "67108864")
        #expect(lines.dropFirst().first == "read-only")
        #expect(lines.dropFirst(2).first?.hasSuffix("0000000000000000") == true)
        #expect(lines.last?.hasPrefix("docker-init") == true || lines.last?.hasPrefix("tini") == true)
        let seccomp = try box.berth([
            "run", "--rm", "--network", "none", box.image, "grep", "Seccomp:", "/proc/self/status",
        ])
        #expect(seccomp.stdoutText.contains("2"))
        let bad = try box.berth(["run", "--rm", "--network", "none", "--memory", "lots", box.image, "true"])
        #expect(bad.status != .exited(0))
        #expect(bad.stderrText.contains("memory"))
    }

    /// A container the memory limit kills shows OOMKilled in inspect, as docker's does; one that exits
    /// on its own does not.
    @Test func anOOMKillIsRecorded() throws {
        // tail reads /dev/zero's endless "line" into memory until the limit's OOM killer ends it.
        let hog = try box.berth(["run", "-d", "--network", "none", "--memory", "16m", box.image, "tail", "/dev/zero"])
        let id = hog.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try box.berth(["wait", id]).stdoutText == "137\n")
        let state = try box.berth(["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", id])
        #expect(state.stdoutText == "true 137\n", "\(state.stderrText)")
        // A plain SIGKILL, under the same limit, is not an OOM kill.
        let sleeper = try box.berth(["run", "-d", "--network", "none", "--memory", "16m", box.image, "sleep", "100"])
        let other = sleeper.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try box.berth(["kill", other])
        #expect(try box.berth(["wait", other]).stdoutText == "137\n")
        let killed = try box.berth(["inspect", "-f", "{{.State.OOMKilled}}", other])
        #expect(killed.stdoutText == "false\n")
        _ = try box.berth(["rm", "-f", other])
        _ = try box.berth(["rm", "-f", id])
    }

    /// docker cp both ways; symlinks in the container that point out of it (absolute, or up with ..)
    /// resolve inside it, so nothing on the host is read or written through them.
    @Test func cpCopiesBothWaysAndNeverLeavesTheContainer() throws {
        let marker = "berth-cp-\(UInt32.random(in: 0...UInt32.max))"
        _ = try box.berth([
            "run", "-d", "--name", "files", "--network", "none", box.image, "sh", "-c",
            "mkdir -p /data && echo inside > /data/f && ln -s /etc /escape && ln -s ../../../../../../ /up && sleep 1000",
        ])
        #expect(try box.eventually { try box.berth(["exec", "files", "test", "-L", "/up"]).status == .exited(0) })
        let host = FileSystem.parent(of: box.root) + "/host"
        try FileSystem.makeDirectories(host, mode: 0o755)
        #expect(try box.berth(["cp", "files:/data/f", host + "/"]).status == .exited(0))
        #expect(try FileSystem.readString(host + "/f") == "inside\n")
        #expect(try box.berth(["cp", "files:/data", host + "/copied"]).status == .exited(0))
        #expect(try FileSystem.readString(host + "/copied/f") == "inside\n")
        // Out through the absolute symlink: the container's /etc/passwd (it names `app`), not the host's.
        #expect(try box.berth(["cp", "-L", "files:/escape/passwd", host + "/passwd"]).status == .exited(0))
        #expect(try FileSystem.readString(host + "/passwd").contains("app:x:1000"))
        // In: a file, and files through both hostile links.
        try FileSystem.writeAtomically(host + "/in.txt", Array("from host\n".utf8))
        try FileSystem.writeAtomically(host + "/\(marker)", Array("escaped?\n".utf8))
        #expect(try box.berth(["cp", host + "/in.txt", "files:/data/"]).status == .exited(0))
        #expect(try box.berth(["exec", "files", "cat", "/data/in.txt"]).stdoutText == "from host\n")
        _ = try box.berth(["cp", host + "/\(marker)", "files:/escape/"])
        _ = try box.berth(["cp", host + "/\(marker)", "files:/up/"])
        #expect(!FileSystem.exists("/etc/\(marker)"))
        #expect(!FileSystem.exists("/\(marker)"))
        let inside = try box.berth(["exec", "files", "sh", "-c", "ls /etc/\(marker) /\(marker) 2>/dev/null | wc -l"])
            .stdoutText
        #expect(inside.trimmingCharacters(in: .whitespacesAndNewlines) != "0")
        // A tar stream on stdin into a directory (docker's `cp - CONTAINER:DIR`), owners kept; a hostile
        // archive (an entry up with .., a symlink out and a file through it) writes nothing outside.
        let archive = try makeArchive(
            host,
            [
                ("t/ok.txt", "file", "streamed\n", 1234), ("../../\(marker)-up", "file", "x\n", 0),
                ("t/out", "symlink", "/", 0), ("t/out/tmp/\(marker)-link", "file", "x\n", 0),
            ])
        let streamed = try box.berth(["cp", "-", "files:/data"], bytes: archive)
        #expect(
            try box.berth(["exec", "files", "sh", "-c", "cat /data/t/ok.txt; stat -c %u /data/t/ok.txt"]).stdoutText
                == "streamed\n1234\n",
            "\(streamed.stderrText)")
        #expect(
            !FileSystem.exists("/tmp/\(marker)-link")
                && !FileSystem.exists(FileSystem.parent(of: box.root) + "/\(marker)-up"))
        let notDirectory = try box.berth(["cp", "-", "files:/data/f"], bytes: archive)
        #expect(
            notDirectory.status != .exited(0) && notDirectory.stderrText.contains("must be a directory"),
            "\(notDirectory.stderrText)")
        let missing = try box.berth(["cp", "files:/no/such", host + "/x"])
        #expect(missing.status != .exited(0))
        #expect(missing.stderrText.contains("Could not find the file /no/such"))
        _ = try box.berth(["rm", "-f", "files"])
    }

    /// A tar made by Python's tarfile (which writes what it is told, `..` and all): (name, kind, content
    /// or link target, uid).
    func makeArchive(_ directory: String, _ entries: [(String, String, String, Int)]) throws -> [UInt8] {
        let path = directory + "/stream.tar"
        let spec = entries.map {
            "(\"\($0.0)\", \"\($0.1)\", \"\($0.2.replacingOccurrences(of: "\n", with: "\\n"))\", \($0.3))"
        }.joined(separator: ", ")
        let script = """
            import io, tarfile
            with tarfile.open("\(path)", "w", format=tarfile.GNU_FORMAT) as t:
                for name, kind, data, uid in [\(spec)]:
                    i = tarfile.TarInfo(name); i.uid = uid; i.gid = uid
                    if kind == "symlink":
                        i.type = tarfile.SYMTYPE; i.linkname = data; t.addfile(i)
                    else:
                        b = data.encode(); i.size = len(b); t.addfile(i, io.BytesIO(b))
            """
        let made = try ChildProcess.run("/usr/bin/python3", arguments: ["python3", "-c", script], environment: [])
        try #require(made.status == .exited(0), "python3 tarfile: \(made.stderrText)")
        return try FileSystem.readFile(path)
    }

    @Test func eventsReportContainersVolumesNetworksAndHealth() throws {
        let since = String(Int(time(nil)) - 1)
        _ = try box.berth(["run", "--rm", "--network", "none", box.image, "true"])
        _ = try box.berthNoun("volume", ["create", "evvol"])
        _ = try box.berthNoun("volume", ["rm", "evvol"])
        let network = "bt\(UInt32.random(in: 0...UInt32.max) % 100000)"
        _ = try box.berthNoun("network", ["create", network])
        _ = try box.berthNoun("network", ["rm", network])
        _ = try box.berth([
            "run", "-d", "--name", "healthy", "--network", "none", "--health-cmd", "true", "--health-interval", "100ms",
            box.image, "sleep", "1000",
        ])
        #expect(try box.eventually { try box.inspect("healthy", "{{.State.Health.Status}}") == "healthy" })
        _ = try box.berth(["rm", "-f", "healthy"])
        let until = String(Int(time(nil)) + 1)
        let all = try box.berth(["events", "--since", since, "--until", until, "--format", "{{.Type}} {{.Action}}"])
        let lines = Set(all.stdoutText.split(separator: "\n").map(String.init))
        for expected in [
            "container create", "container start", "container die", "container destroy", "volume create",
            "volume destroy",
            "network create", "network destroy", "container health_status: healthy", "container kill",
        ] {
            #expect(lines.contains(expected), "\(expected) missing from \(all.stdoutText) \(all.stderrText)")
        }
        let volumes = try box.berth([
            "events", "--since", since, "--until", until, "--filter", "type=volume", "--format",
            "{{.Actor.ID}} {{.Action}}",
        ])
        #expect(volumes.stdoutText == "evvol create\nevvol destroy\n")
        let plain = try box.berth([
            "events", "--since", since, "--until", until, "--filter", "container=healthy", "--filter", "event=start",
        ])
        #expect(plain.stdoutText.contains("container start") && plain.stdoutText.contains("name=healthy"))
    }
}
