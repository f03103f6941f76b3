#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// The container endpoints beyond the lifecycle — exec, pause, rename, top, stats, cp, diff, export,
/// prune — driven by the real docker CLI (and the Python SDK) against `berth engine`.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && dockerCLI != nil, "runs containers and the docker CLI: needs real root and docker"))
final class DockerContainerCLITests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("ctr") }
    deinit { box.tearDown() }

    /// A container that runs until removed, with no network (the bridge is not this suite's business).
    @discardableResult
    func runIdle(_ name: String, _ extra: [String] = []) throws -> String {
        let started = try box.docker(
            ["run", "-d", "--name", name, "--network", "none"] + extra + [box.image, "sleep", "1000"])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        return started.stdoutText.trimmed
    }

    @Test func execGivesTheStatusOutputEnvironmentDirectoryUserAndStdinOfItsProcess() throws {
        try runIdle("ex")
        let failed = try box.docker(["exec", "ex", "sh", "-c", "exit 3"])
        #expect(failed.status == .exited(3), "\(failed.stderrText)")
        // dockerd's exec events, in the engine's event log.
        let events = try FileSystem.readString(box.root + "/events.jsonl")
        for action in [#""exec_create: sh -c exit 3""#, #""exec_start: sh -c exit 3""#, #""exitCode":"3""#] {
            #expect(events.contains(action), "\(action) not in \(events.suffix(600))")
        }

        let streams = try box.docker(["exec", "ex", "sh", "-c", "echo out; echo err >&2"])
        #expect(streams.status == .exited(0))
        #expect(
            streams.stdoutText == "out\n" && streams.stderrText == "err\n",
            "\(streams.stdoutText)|\(streams.stderrText)")

        let settings = try box.docker([
            "exec", "-e", "GREETING=hi", "-w", "/tmp", "-u", "1:2", "ex", "sh", "-c",
            "echo $GREETING $(pwd) $(id -u):$(id -g) $FROM_IMAGE",
        ])
        #expect(settings.stdoutText == "hi /tmp 1:2 yes\n", "\(settings.stdoutText)\(settings.stderrText)")

        // stdin reaches the process and its end closes the process's stdin (cat ends).
        let echoed = try box.docker(["exec", "-i", "ex", "sh", "-c", "cat; echo done"], input: "through stdin\n")
        #expect(echoed.stdoutText == "through stdin\ndone\n", "\(echoed.stdoutText)\(echoed.stderrText)")

        // A process that ends without reading a large input: the daemon's write fails, nothing more.
        let unread = try box.docker(["exec", "-i", "ex", "true"], input: String(repeating: "x", count: 1 << 20))
        #expect(unread.status == .exited(0), "\(unread.stderrText)")
        #expect(try box.docker(["exec", "ex", "echo", "alive"]).stdoutText == "alive\n")

        // -d returns at once; the process still runs to its end in the container.
        let detached = try box.docker(["exec", "-d", "ex", "sh", "-c", "echo later > /tmp/detached"])
        #expect(detached.status == .exited(0), "\(detached.stderrText)")
        #expect(try box.eventually { try box.docker(["exec", "ex", "cat", "/tmp/detached"]).stdoutText == "later\n" })
        // -d -t: the process gets a terminal all the same, though no one reads it.
        let detachedTerminal = try box.docker(["exec", "-dt", "ex", "sh", "-c", "tty > /tmp/detached-tty"])
        #expect(detachedTerminal.status == .exited(0), "\(detachedTerminal.stderrText)")
        #expect(
            try box.eventually {
                try box.docker(["exec", "ex", "cat", "/tmp/detached-tty"]).stdoutText.hasPrefix("/dev/pts/")
            })

        // A detached exec's status is known afterwards, as dockerd's (exec inspect's ExitCode).
        for (command, tty, code) in [("exit 7", false, 7), ("exit 9", true, 9)] {
            let body = #"{"Cmd":["sh","-c","\#(command)"],"Tty":\#(tty)}"#
            let created = try rawExchange(
                box.socket,
                "POST /v1.47/containers/ex/exec HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            #expect(created.status == 201, "\(created.body)")
            guard let idRange = created.body.firstRange(of: #""Id":""#) else { continue }
            let id = String(created.body[idRange.upperBound...].prefix(64))
            let start = #"{"Detach":true,"Tty":\#(tty)}"#
            let started = try rawExchange(
                box.socket,
                "POST /v1.47/exec/\(id)/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: \(start.utf8.count)\r\nConnection: close\r\n\r\n\(start)"
            )
            #expect(started.status == 200, "\(started.body)")
            var inspected = ""
            #expect(
                try box.eventually {
                    inspected = try rawExchange(
                        box.socket, "GET /v1.47/exec/\(id)/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
                    ).body
                    return inspected.contains(#""Running":false"#)
                }, "\(inspected)")
            #expect(inspected.contains(#""ExitCode":\#(code)"#), "tty \(tty): \(inspected)")
        }

        let missing = try box.docker(["exec", "ex", "no-such-program"])
        #expect(missing.status != .exited(0))

        let unknown = try box.docker(["exec", "nosuch", "true"])
        #expect(unknown.status != .exited(0))
        #expect(unknown.stderrText.contains("No such container: nosuch"), "\(unknown.stderrText)")
        #expect(try box.docker(["stop", "-t", "0", "ex"]).status == .exited(0))
        let stopped = try box.docker(["exec", "ex", "true"])
        #expect(stopped.status != .exited(0))
        #expect(stopped.stderrText.contains("is not running"), "\(stopped.stderrText)")
    }

    /// `docker exec -it` under a pseudo-terminal of its own (util-linux `script`): the process has a
    /// terminal, its output comes raw, and its status is the CLI's.
    @Test(.enabled(if: FileSystem.exists("/usr/bin/script"), "needs script(1)"))
    func execWithATerminalRunsOnAPseudoTerminal() throws {
        try runIdle("tty")
        let command = "\(dockerCLI!) exec -it tty sh -c 'tty; test -t 0 && echo interactive; exit 5'"
        let out = try ChildProcess.run(
            "/usr/bin/script", arguments: ["script", "-qec", command, "/dev/null"],
            environment: [
                "DOCKER_HOST=unix://\(box.socket)", "DOCKER_CONFIG=\(box.base)/docker-config",
                standardPath, "HOME=\(box.base)", "TERM=xterm",
            ])
        #expect(out.status == .exited(5), "\(out.stdoutText)\(out.stderrText)")
        #expect(out.stdoutText.contains("/dev/pts/"), "\(out.stdoutText)")
        #expect(out.stdoutText.contains("interactive"), "\(out.stdoutText)")
        // A terminal's output is the terminal's: \r\n line ends, not multiplexed frames.
        #expect(out.stdoutText.contains("interactive\r\n"), "\(out.stdoutText.debugDescription)")
    }

    /// Under a pseudo-terminal python drives: the terminal's size, and a change of it, reach the exec'd
    /// process, and the detach sequence (ctrl-p ctrl-q) ends the CLI while the process runs on.
    @Test(.enabled(if: python3 != nil, "drives a pseudo-terminal with python3"))
    func execWithATerminalTakesItsSizeAndDetachesOnTheDetachKeys() throws {
        try runIdle("keys")
        let script = """
            import fcntl, os, pty, select, struct, sys, termios, time
            docker, name = sys.argv[1], sys.argv[2]
            pid, fd = pty.fork()
            if pid == 0:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
                os.execv(docker, ["docker", "exec", "-it", name, "sh", "-c",
                                  "stty size; echo ready; while [ \\"$(stty size)\\" != '40 120' ]; do sleep 0.05; done; echo resized; exec sleep 999"])
            out = b""
            deadline = time.time() + 20
            def until(marker):
                global out
                while marker not in out and time.time() < deadline:
                    if select.select([fd], [], [], 1)[0]:
                        out += os.read(fd, 1024)
            until(b"ready")
            # The CLI passes a change of its terminal's size on (SIGWINCH → POST /exec/{id}/resize).
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            until(b"resized")
            os.write(fd, b"\\x10\\x11")
            while time.time() < deadline:
                if not select.select([fd], [], [], 1)[0]:
                    continue
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            _, status = os.waitpid(pid, 0)
            print(os.waitstatus_to_exitcode(status), repr(out))
            """
        let env = [
            "DOCKER_HOST=unix://\(box.socket)", "DOCKER_CONFIG=\(box.base)/docker-config", standardPath,
            "HOME=\(box.base)", "TERM=xterm",
        ]
        let out = try ChildProcess.run(
            python3!, arguments: ["python3", "-c", script, dockerCLI!, "keys"], environment: env)
        #expect(out.status == .exited(0), "\(out.stderrText)")
        // The CLI spots the sequence itself and says so (its exit status is the CLI's own business).
        #expect(out.stdoutText.contains("read escape sequence"), "the CLI did not detach: \(out.stdoutText)")
        #expect(out.stdoutText.contains("33 99"), "\(out.stdoutText)")
        #expect(out.stdoutText.contains("resized"), "\(out.stdoutText)")
        // Detached, not ended: the exec'd process is still one of the container's.
        #expect(try box.docker(["top", "keys"]).stdoutText.contains("sleep 999"))
    }

    /// `POST /containers/{id}/resize` reaches the terminal the monitor holds for the container.
    @Test func aTerminalContainerTakesTheSizeItIsResizedTo() throws {
        try runIdle("sized", ["-t"])
        let resized = try rawExchange(
            box.socket,
            "POST /v1.47/containers/sized/resize?h=21&w=77 HTTP/1.1\r\nHost: docker\r\n"
                + "Content-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(resized.status == 200, "\(resized)")
        // The monitor applies it on its own time: looked at until it shows (no event says so).
        var seen = ""
        let applied = try box.eventually(10) {
            seen = try box.docker(["exec", "sized", "sh", "-c", "stty size < /proc/1/fd/0"]).stdoutText
            return seen == "21 77\n"
        }
        #expect(applied, "\(seen)")
    }

    /// The statuses dockerd gives, which clients branch on.
    @Test func theEndpointsAnswerWithDockersStatusCodes() throws {
        try runIdle("codes")
        #expect(
            try box.docker(["create", "--name", "idle", "--network", "none", box.image, "true"]).status == .exited(0))
        func exchange(_ method: String, _ path: String, body: String = "") throws -> (
            status: Int, headers: [String: String], body: String
        ) {
            try rawExchange(
                box.socket,
                "\(method) /v1.47\(path) HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
        let exec = #"{"Cmd":["true"],"AttachStdout":true}"#
        #expect(try exchange("POST", "/containers/nosuch/exec", body: exec).status == 404)
        #expect(try exchange("POST", "/containers/idle/exec", body: exec).status == 409)
        #expect(try exchange("POST", "/containers/codes/exec", body: #"{"Cmd":[]}"#).status == 400)
        #expect(try exchange("GET", "/exec/nosuch/json").status == 404)
        #expect(try exchange("POST", "/exec/nosuch/start", body: "{}").status == 404)
        let created = try exchange("POST", "/containers/codes/exec", body: exec)
        #expect(created.status == 201 && created.body.contains(#""Id""#), "\(created)")

        #expect(try exchange("HEAD", "/containers/codes/archive?path=/no/such").status == 404)
        let stat = try exchange("HEAD", "/containers/codes/archive?path=/etc/passwd")
        #expect(stat.status == 200)
        let decoded =
            stat.headers["x-docker-container-path-stat"].flatMap { Data(base64Encoded: $0) }.map {
                String(decoding: $0, as: UTF8.self)
            } ?? ""
        #expect(decoded.contains(#""name":"passwd""#) && decoded.contains(#""mode":420"#), "\(decoded)")
        #expect(try exchange("PUT", "/containers/codes/archive?path=/etc/passwd").status == 400)

        #expect(try exchange("POST", "/containers/codes/rename?name=").status == 400)
        #expect(try exchange("POST", "/containers/codes/rename?name=idle").status == 409)
        #expect(try exchange("POST", "/containers/idle/pause").status == 409)
        #expect(try exchange("POST", "/containers/codes/resize?h=x&w=80").status == 400)
        #expect(try exchange("POST", "/containers/idle/resize?h=24&w=80").status == 409)
        #expect(try exchange("GET", "/containers/idle/top").status == 409)
        #expect(try exchange("GET", "/containers/nosuch/changes").status == 404)
        #expect(try exchange("POST", "/containers/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D").status == 400)
        // attach with logs=1 replays the output so far (stream=0: and ends). Without an upgrade: the
        // SDK's upgraded read can lose bytes that come with the 101 in one read, on dockerd too.
        let talker = try box.docker([
            "run", "-d", "--name", "talker", "--network", "none", box.image, "sh", "-c", "echo early; sleep 1000",
        ])
        #expect(talker.status == .exited(0))
        #expect(try box.eventually { try box.docker(["logs", "talker"]).stdoutText == "early\n" })
        let replay = try exchange("POST", "/containers/talker/attach?logs=1&stdout=1&stderr=1&stream=0")
        #expect(
            replay.status == 200 && replay.body == "\u{01}\0\0\0\0\0\0\u{06}early\n", "\(replay.body.debugDescription)")

        // A container that is not running: one empty reading, and the stream ends.
        let stats = try exchange("GET", "/containers/idle/stats?stream=true")
        #expect(
            stats.status == 200 && stats.body.contains(#""read":"0001-01-01T00:00:00Z""#), "\(stats.body.prefix(300))")
    }

    @Test func pausedContainersAreListedAsSuchAndRefuseExecUntilUnpaused() throws {
        try runIdle("pz")
        #expect(try box.docker(["pause", "pz"]).status == .exited(0))
        #expect(try box.docker(["ps", "--format", "{{.Status}}"]).stdoutText.contains("(Paused)"))
        #expect(
            try box.docker(["inspect", "--format", "{{.State.Status}} {{.State.Paused}}", "pz"]).stdoutText.trimmed
                == "paused true")
        let refused = try box.docker(["exec", "pz", "true"])
        #expect(refused.status != .exited(0))
        #expect(refused.stderrText.contains("is paused"), "\(refused.stderrText)")
        let twice = try box.docker(["pause", "pz"])
        #expect(twice.status != .exited(0))
        #expect(try box.docker(["unpause", "pz"]).status == .exited(0))
        #expect(try box.docker(["exec", "pz", "echo", "back"]).stdoutText == "back\n")
        let notPaused = try box.docker(["unpause", "pz"])
        #expect(notPaused.status != .exited(0))
        #expect(notPaused.stderrText.contains("is not paused"), "\(notPaused.stderrText)")
    }

    @Test func renameAndTopWorkAsDockers() throws {
        let id = try runIdle("before")
        try runIdle("other")
        #expect(try box.docker(["rename", "before", "after"]).status == .exited(0))
        #expect(
            try box.docker(["inspect", "--format", "{{.Name}} {{.Id}}", "after"]).stdoutText.trimmed == "/after \(id)")
        let taken = try box.docker(["rename", "after", "other"])
        #expect(taken.status != .exited(0))
        #expect(taken.stderrText.contains("already in use"), "\(taken.stderrText)")

        let top = try box.docker(["top", "after"])
        #expect(top.status == .exited(0), "\(top.stderrText)")
        let lines = top.stdoutText.split(separator: "\n")
        #expect(lines.first?.contains("PID") == true && lines.first?.contains("CMD") == true, "\(top.stdoutText)")
        #expect(lines.count == 2 && lines[1].hasSuffix("sleep 1000"), "\(top.stdoutText)")
        let custom = try box.docker(["top", "after", "-o", "pid,comm"])
        #expect(
            custom.stdoutText.split(separator: "\n").last?.hasSuffix("sleep") == true,
            "\(custom.stdoutText)\(custom.stderrText)")
        #expect(try box.docker(["kill", "other"]).status == .exited(0))
        let stopped = try box.docker(["top", "other"])
        #expect(stopped.status != .exited(0))
        #expect(stopped.stderrText.contains("is not running"), "\(stopped.stderrText)")
    }

    @Test func statsWithoutStreamingPrintsOneSaneRow() throws {
        try runIdle("st", ["--memory", "64m"])
        let out = try box.docker([
            "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.PIDs}}", "st",
        ])
        #expect(out.status == .exited(0), "\(out.stderrText)")
        let fields = out.stdoutText.trimmed.split(separator: "|").map(String.init)
        #expect(fields.count == 5, "\(out.stdoutText)")
        guard fields.count == 5 else { return }
        #expect(fields[0] == "st")
        #expect(fields[1].hasSuffix("%") && Double(fields[1].dropLast()) != nil, "\(fields[1])")
        // Some usage, out of the limit the container was given.
        #expect(fields[2].hasSuffix(" / 64MiB") && !fields[2].hasPrefix("0B"), "\(fields[2])")
        #expect(fields[3] == "0B / 0B", "\(fields[3])")
        #expect(fields[4] == "1", "\(fields[4])")
    }

    @Test func copyGoesBothWaysOnRunningAndStoppedContainers() throws {
        try runIdle("cp")
        let local = box.base + "/local"
        try FileSystem.makeDirectories(local + "/dir/sub", mode: 0o755)
        try FileSystem.writeAtomically(local + "/file.txt", Array("a file\n".utf8))
        try FileSystem.writeAtomically(local + "/dir/sub/deep.txt", Array("deep\n".utf8))

        chown(local + "/file.txt", 1234, 4321)
        #expect(try box.docker(["cp", local + "/file.txt", "cp:/tmp/copied.txt"]).status == .exited(0))
        #expect(try box.docker(["exec", "cp", "cat", "/tmp/copied.txt"]).stdoutText == "a file\n")
        // Owned by root in the container, unless -a keeps the owners.
        #expect(try box.docker(["exec", "cp", "stat", "-c", "%u:%g", "/tmp/copied.txt"]).stdoutText == "0:0\n")
        #expect(try box.docker(["cp", "-a", local + "/file.txt", "cp:/tmp/kept.txt"]).status == .exited(0))
        #expect(try box.docker(["exec", "cp", "stat", "-c", "%u:%g", "/tmp/kept.txt"]).stdoutText == "1234:4321\n")
        let intoDirectory = try box.docker(["cp", local + "/dir", "cp:/srv/"])
        #expect(intoDirectory.status == .exited(0), "\(intoDirectory.stderrText)")
        #expect(try box.docker(["exec", "cp", "cat", "/srv/dir/sub/deep.txt"]).stdoutText == "deep\n")

        let back = box.base + "/back"
        try FileSystem.makeDirectories(back, mode: 0o755)
        let fileOut = try box.docker(["cp", "cp:/tmp/copied.txt", back + "/file-out.txt"])
        #expect(fileOut.status == .exited(0), "\(fileOut.stderrText)")
        #expect(try FileSystem.readString(back + "/file-out.txt") == "a file\n")
        #expect(try box.docker(["cp", "cp:/srv/dir", back]).status == .exited(0))
        #expect(try FileSystem.readString(back + "/dir/sub/deep.txt") == "deep\n")
        // `dir/.`: the directory's contents, not the directory.
        let contents = try box.docker(["cp", "cp:/srv/dir/.", back + "/contents"])
        #expect(contents.status == .exited(0), "\(contents.stderrText)")
        #expect(try FileSystem.readString(back + "/contents/sub/deep.txt") == "deep\n")
        // Through `-`: the tar stream itself.
        let streamed = try box.docker(["cp", "cp:/tmp/copied.txt", "-"])
        #expect(
            streamed.status == .exited(0) && streamed.stdout.count % 512 == 0 && streamed.stdoutText.contains("a file"),
            "\(streamed.stderrText)")
        // A symlink comes out as a link; with -L, what it points at (inside the container).
        #expect(try box.docker(["cp", "cp:/bin/sh", back + "/sh-link"]).status == .exited(0))
        var target = [CChar](repeating: 0, count: 256)
        let length = readlink(back + "/sh-link", &target, 255)
        #expect(
            length > 0
                && String(decoding: target[0..<max(0, length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    == "busybox"
        )
        let followed = try box.docker(["cp", "-L", "cp:/bin/sh", back + "/sh-real"])
        #expect(followed.status == .exited(0), "\(followed.stderrText)")
        #expect(try FileSystem.readFile(back + "/sh-real") == FileSystem.readFile("/bin/busybox"))
        let absent = try box.docker(["cp", "cp:/no/such/file", back])
        #expect(absent.status != .exited(0))
        #expect(absent.stderrText.contains("Could not find the file"), "\(absent.stderrText)")

        // A file never replaces a directory of the same name (the CLI's noOverwriteDirNonDir).
        #expect(try box.docker(["exec", "cp", "mkdir", "-p", "/tmp/clash/keep"]).status == .exited(0))
        try FileSystem.writeAtomically(local + "/clash", Array("a file\n".utf8))
        let clash = try box.docker(["cp", local + "/clash", "cp:/tmp/"])
        #expect(clash.status != .exited(0))
        #expect(clash.stderrText.contains("cannot overwrite directory"), "\(clash.stderrText)")
        #expect(try box.docker(["exec", "cp", "test", "-d", "/tmp/clash/keep"]).status == .exited(0))

        // A container that never ran: its filesystem is there all the same.
        #expect(
            try box.docker(["create", "--name", "cold", "--network", "none", box.image, "true"]).status == .exited(0))
        #expect(try box.docker(["cp", local + "/file.txt", "cold:/tmp/cold.txt"]).status == .exited(0))
        #expect(try box.docker(["cp", "cold:/tmp/cold.txt", back + "/cold.txt"]).status == .exited(0))
        #expect(try FileSystem.readString(back + "/cold.txt") == "a file\n")
        // And one that has stopped.
        #expect(try box.docker(["kill", "cp"]).status == .exited(0))
        #expect(try box.docker(["cp", "cp:/srv/dir/sub/deep.txt", back + "/stopped.txt"]).status == .exited(0))
        #expect(try FileSystem.readString(back + "/stopped.txt") == "deep\n")
    }

    /// A tar with `../` names and a symlink to an absolute host path, sent straight to the API: nothing
    /// of it may land outside the container's root.
    @Test(.enabled(if: python3 != nil, "builds the hostile tar with python3"))
    func aHostileArchiveStaysInsideTheContainer() throws {
        try runIdle("target")
        let outside = box.base + "/outside"
        try FileSystem.makeDirectories(outside, mode: 0o755)
        let tarPath = box.base + "/hostile.tar"
        let script = """
            import io, sys, tarfile
            outside, path = sys.argv[1], sys.argv[2]
            with tarfile.open(path, "w") as t:
                def add(name, data=b"pwned", kind=tarfile.REGTYPE, link=""):
                    i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0
                    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
                add("../../../../../../../../.." + outside + "/dotdot")
                add("escape", kind=tarfile.SYMTYPE, link=outside)
                add("escape/through-link")
                add("fine.txt", b"inside")
            """
        let built = try ChildProcess.run(
            python3!, arguments: ["python3", "-c", script, outside, tarPath], environment: [standardPath])
        #expect(built.status == .exited(0), "\(built.stderrText)")
        let tar = try FileSystem.readFile(tarPath)
        let connection = try UnixSocket.connect(box.socket)
        let head =
            "PUT /v1.47/containers/target/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
            + "Content-Length: \(tar.count)\r\nConnection: close\r\n\r\n"
        try connection.send(Array(head.utf8) + tar)
        let reply = String(decoding: try connection.readAll(), as: UTF8.self)
        #expect(reply.hasPrefix("HTTP/1.1 "), "\(reply)")
        let leaked = try FileSystem.listDirectory(outside)
        #expect(leaked.isEmpty, "written outside the container: \(leaked)")
        // The daemon carries on, and what was harmless in the archive (if it took any of it) is inside.
        #expect(try box.docker(["exec", "target", "true"]).status == .exited(0))
        if reply.hasPrefix("HTTP/1.1 200") {
            #expect(try box.docker(["exec", "target", "cat", "/tmp/fine.txt"]).stdoutText == "inside")
        }
    }

    @Test func diffAndExportShowWhatTheContainerChanged() throws {
        let ran = try box.docker([
            "run", "--name", "changer", "--network", "none", box.image, "sh", "-c",
            "echo new > /tmp/new.txt; rm /etc/group; echo more >> /etc/passwd",
        ])
        #expect(ran.status == .exited(0), "\(ran.stderrText)")
        let diff = try box.docker(["diff", "changer"])
        #expect(diff.status == .exited(0), "\(diff.stderrText)")
        let lines = Set(diff.stdoutText.split(separator: "\n").map(String.init))
        for expected in ["C /tmp", "A /tmp/new.txt", "C /etc", "D /etc/group", "C /etc/passwd"] {
            #expect(lines.contains(expected), "\(expected) missing from \(diff.stdoutText)")
        }
        #expect(!lines.contains { $0.hasSuffix("/bin/busybox") })

        // What the runtime made to mount things on (/proc, /etc/hosts …) is not the container's doing.
        try runIdle("untouched")
        let untouched = try box.docker(["diff", "untouched"])
        #expect(untouched.status == .exited(0) && untouched.stdoutText.isEmpty, "\(untouched.stdoutText)")

        let exported = box.base + "/export.tar"
        let export = try box.docker(["export", "-o", exported, "changer"])
        #expect(export.status == .exited(0), "\(export.stderrText)")
        let listing = try ChildProcess.run("/bin/tar", arguments: ["tar", "tf", exported], environment: [standardPath])
        let names = Set(listing.stdoutText.split(separator: "\n").map(String.init))
        #expect(names.contains("bin/busybox") && names.contains("tmp/new.txt"), "\(listing.stdoutText.prefix(400))")
        #expect(!names.contains("etc/group"))
    }

    @Test func pruneRemovesOnlyStoppedContainersTheFiltersSelect() throws {
        let running = try runIdle("keeps-running")
        let junk = try box.docker([
            "run", "--name", "junk", "--label", "kind=junk", "--network", "none", box.image, "sh", "-c",
            "head -c 4096 /dev/zero > /tmp/blob",
        ])
        #expect(junk.status == .exited(0), "\(junk.stderrText)")
        #expect(try box.docker(["run", "--name", "kept", "--network", "none", box.image, "true"]).status == .exited(0))

        let labelled = try box.docker(["container", "prune", "-f", "--filter", "label=kind=junk"])
        #expect(labelled.status == .exited(0), "\(labelled.stderrText)")
        #expect(labelled.stdoutText.contains("Deleted Containers:"), "\(labelled.stdoutText)")
        #expect(!labelled.stdoutText.contains("Total reclaimed space: 0B"), "\(labelled.stdoutText)")
        let left = Set(
            try box.docker(["ps", "-a", "--format", "{{.Names}}"]).stdoutText.split(separator: "\n").map(String.init))
        #expect(left == ["keeps-running", "kept"])

        #expect(try box.docker(["container", "prune", "-f"]).status == .exited(0))
        #expect(try box.docker(["ps", "-aq", "--no-trunc"]).stdoutText.trimmed == running)
    }

    /// The Python SDK's exec_run, stats, get_archive, put_archive, top, diff, export, pause, rename, prune.
    @Test(.enabled(if: pythonSDK, "needs the docker SDK for Python"))
    func thePythonSDKExecsReadsStatsAndCopies() throws {
        try runIdle("sdk", ["--label", "x=y"])
        let script = box.base + "/sdk-containers.py"
        try FileSystem.writeAtomically(script, Array(Self.sdkScript.utf8))
        let out = try ChildProcess.run(
            python3 ?? "python3", arguments: ["python3", script, box.socket, box.image],
            environment: ChildProcess.currentEnvironment.filter { !$0.hasPrefix("DOCKER_") })
        #expect(out.status == .exited(0), "\(out.stdoutText)\(out.stderrText)")
        #expect(out.stdoutText.hasSuffix("all good\n"), "\(out.stdoutText)\(out.stderrText)")
    }

    static let sdkScript = """
        import io, sys, tarfile, time, docker
        socket, image = sys.argv[1], sys.argv[2]
        c = docker.DockerClient(base_url="unix://" + socket)
        box = c.containers.get("sdk")
        r = box.exec_run(["sh", "-c", "echo hi; exit 4"])
        assert r.exit_code == 4 and r.output == b"hi\\n", r
        r = box.exec_run("sh -c 'echo $A'", environment={"A": "b"}, workdir="/tmp")
        assert r.exit_code == 0 and r.output == b"b\\n", r
        out, err = box.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True).output
        assert out == b"o\\n" and err == b"e\\n", (out, err)
        eid = c.api.exec_create(box.id, ["true"])["Id"]
        before = c.api.exec_inspect(eid)
        assert before["Running"] is False and before["ExitCode"] is None and before["ContainerID"] == box.id, before
        c.api.exec_start(eid)
        after = c.api.exec_inspect(eid)
        assert after["ExitCode"] == 0 and after["ProcessConfig"]["entrypoint"] == "true", after
        try:
            c.api.exec_inspect("nosuch")
            raise SystemExit("found exec nosuch")
        except docker.errors.NotFound:
            pass

        s = box.stats(stream=False)
        assert s["id"] == box.id and s["name"] == "/sdk", s
        assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0 and s["cpu_stats"]["online_cpus"] >= 1, s["cpu_stats"]
        assert s["precpu_stats"]["system_cpu_usage"] > 0, s["precpu_stats"]
        assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0, s["memory_stats"]
        assert s["pids_stats"]["current"] == 1, s["pids_stats"]
        stream = box.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        assert second["preread"] == first["read"], (first["read"], second["preread"])
        stream.close()
        # A followed stream ends when its container stops.
        watcher = docker.DockerClient(base_url="unix://" + socket, timeout=30)
        followed = watcher.containers.get("sdk").stats(stream=True, decode=True)
        next(followed)
        box.kill()
        rest = list(followed)
        assert rest and rest[-1]["read"] == "0001-01-01T00:00:00Z", rest[-1:]
        box.wait()
        box.start()

        chunks, stat = box.get_archive("/etc/passwd")
        assert stat["name"] == "passwd" and stat["size"] > 0, stat
        data = io.BytesIO(b"".join(chunks))
        with tarfile.open(fileobj=data) as t:
            assert t.getnames() == ["passwd"], t.getnames()
            assert t.extractfile("passwd").read().startswith(b"root:"), "passwd content"
        _, dirstat = box.get_archive("/tmp")
        assert dirstat["mode"] & (1 << 31), dirstat
        try:
            box.get_archive("/no/such")
            raise SystemExit("archived a missing path")
        except docker.errors.NotFound:
            pass
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w") as t:
            info = tarfile.TarInfo("put/hello.txt"); body = b"put by sdk"; info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        assert box.put_archive("/srv", payload.getvalue())
        assert box.exec_run("cat /srv/put/hello.txt").output == b"put by sdk"

        r = box.exec_run("sh -c 'test -t 1 && echo tty'", tty=True)
        assert r.exit_code == 0 and r.output == b"tty\\r\\n", r
        assert b"".join(box.exec_run(["sh", "-c", "echo a; echo b"], stream=True).output) == b"a\\nb\\n"
        assert not box.exec_run(["sh", "-c", "touch /tmp/from-detached"], detach=True).output

        top = box.top()
        assert "PID" in top["Titles"] and any("sleep 1000" in p[-1] for p in top["Processes"]), top
        assert {"Path": "/srv/put", "Kind": 1} in box.diff(), box.diff()
        exported = b"".join(box.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as t:
            assert "srv/put/hello.txt" in t.getnames()
        box.pause()
        box.reload()
        assert box.status == "paused", box.status
        try:
            box.exec_run("true")
            raise SystemExit("exec in a paused container")
        except docker.errors.APIError as e:
            assert e.status_code == 409, e
        box.unpause()
        box.rename("sdk-renamed")
        box.reload()
        assert box.name == "sdk-renamed", box.name

        talker = c.containers.run(image, ["sh", "-c", "sleep 1000"], detach=True, name="talker", network_mode="none")
        talker.kill()
        talker.wait()
        pruned = c.containers.prune(filters={"label": "x=y"})
        assert pruned["ContainersDeleted"] is None, pruned
        pruned = c.containers.prune()
        assert pruned["ContainersDeleted"] == [talker.id] and pruned["SpaceReclaimed"] >= 0, pruned
        print("all good")
        """
}
