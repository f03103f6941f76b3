#if canImport(Glibc)
import Glibc
#endif
import BerthImage
import BerthOS
import FoundationEssentials
import Testing

/// `berth engine` as a docker user meets it: the real docker CLI (DOCKER_HOST=unix://…) driving the
/// daemon through the Docker Engine API, on containers made from an image the suite builds.
/// Containers use `--network none`: the bridge is the engine suites' business, not the API's.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && dockerCLI != nil, "runs containers and the docker CLI: needs real root and docker"))
final class DockerCLITests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("cli") }
    deinit { box.tearDown() }

    @Test func versionAndInfoAnswerFromTheDaemon() throws {
        let version = try box.docker([
            "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Server.Version}}",
        ])
        #expect(version.status == .exited(0), "\(version.stderrText)")
        #expect(version.stdoutText.trimmed == "1.47 linux 0.1.0")
        let plain = try box.docker(["version"])
        #expect(plain.status == .exited(0), "\(plain.stderrText)")
        #expect(plain.stdoutText.contains("Server: Berth Engine"))
        #expect(plain.stdoutText.contains("1.47 (minimum version 1.24)"), "\(plain.stdoutText)")
        let info = try box.docker(["info", "--format", "{{.OSType}} {{.DockerRootDir}} {{.Images}}"])
        #expect(info.status == .exited(0), "\(info.stderrText)")
        #expect(info.stdoutText.trimmed == "linux \(box.root) 1")
        let full = try box.docker(["info"])
        #expect(full.status == .exited(0), "\(full.stderrText)")
        #expect(full.stdoutText.contains("Server Version: 0.1.0"))
    }

    @Test func pullFromTheLocalRegistryThenListAndInspect() throws {
        let registry = try LocalRegistry(in: box.base)
        defer { registry.stop() }
        // The image reaches the registry from a store of its own, as a user's push would put it there:
        // the busybox layer the daemon's store has already, and one it has not.
        let name = "\(registry.host)/test/pulled:1"
        let staging = box.base + "/staging"
        _ = try DaemonBox.extraLayer(in: staging, content: "from the registry\n")
        try DaemonBox.importImage(
            [box.base + "/layer.tar", staging + "/extra.tar"], into: staging + "/store", name: name)
        let other = "\(registry.host)/test/auto:1"
        try DaemonBox.importImage(
            [box.base + "/layer.tar", staging + "/extra.tar"], into: staging + "/store", name: other)
        try runBlocking {
            let service = try ImageService(store: try ContentStore(root: staging + "/store"))
            do {
                try await service.push(name)
                try await service.push(other)
            } catch {
                await service.shutdown()
                throw error
            }
            await service.shutdown()
        }

        let pulled = try box.docker(["pull", name])
        #expect(pulled.status == .exited(0), "\(pulled.stderrText)")
        #expect(pulled.stdoutText.contains("1: Pulling from test/pulled"), "\(pulled.stdoutText)")
        #expect(pulled.stdoutText.contains("Already exists"), "\(pulled.stdoutText)")
        #expect(pulled.stdoutText.contains("Pull complete"), "\(pulled.stdoutText)")
        #expect(pulled.stdoutText.contains("Status: Downloaded newer image for \(name)"), "\(pulled.stdoutText)")
        let again = try box.docker(["pull", name])
        #expect(again.stdoutText.contains("Status: Image is up to date for \(name)"), "\(again.stdoutText)")

        let images = try box.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        #expect(images.status == .exited(0), "\(images.stderrText)")
        #expect(Set(images.stdoutText.split(separator: "\n").map(String.init)) == [name, box.image])
        let inspected = try box.docker([
            "image", "inspect", "--format", "{{.Os}} {{index .RepoTags 0}} {{.Config.WorkingDir}}", name,
        ])
        #expect(inspected.stdoutText.trimmed == "linux \(name) /srv", "\(inspected.stderrText)")
        let ran = try box.docker(["run", "--rm", "--network", "none", name, "cat", "/etc/pulled"])
        #expect(ran.stdoutText == "from the registry\n", "\(ran.stderrText)")
        // run of an image the daemon does not have: its 404 makes the CLI pull, then create again.
        let auto = try box.docker(["run", "--rm", "--network", "none", other, "cat", "/etc/pulled"])
        #expect(auto.status == .exited(0), "\(auto.stderrText)")
        #expect(auto.stderrText.contains("Unable to find image '\(other)' locally"), "\(auto.stderrText)")
        #expect(auto.stdoutText == "from the registry\n")

        // A tag the registry does not have: the CLI reports the daemon's error and fails.
        let missing = try box.docker(["pull", "\(registry.host)/test/pulled:nosuch"])
        #expect(missing.status != .exited(0))
        #expect(missing.stderrText.contains("nosuch"), "\(missing.stderrText)")
    }

    @Test func runWithRemovePrintsTheOutputAndExitsWithTheContainersStatus() throws {
        let out = try box.docker([
            "run", "--rm", "--network", "none", box.image, "sh", "-c", "echo hi; echo err >&2; exit 3",
        ])
        #expect(out.status == .exited(3), "\(out.stderrText)")
        #expect(out.stdoutText == "hi\n")
        #expect(out.stderrText == "err\n")
        // --rm: nothing left, through the API or the CLI beside it.
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
        #expect(try box.berthCLI(["ps", "-aq"]).stdoutText.isEmpty)

        let ok = try box.docker([
            "run", "--rm", "--network", "none", "-e", "GREETING=hello", box.image, "sh", "-c",
            "echo $GREETING $FROM_IMAGE; pwd",
        ])
        #expect(ok.status == .exited(0), "\(ok.stderrText)")
        #expect(ok.stdoutText == "hello yes\n/srv\n")

        // A program that is not there: docker's 127, the daemon's message on stderr, and no container left.
        let missing = try box.docker(["run", "--rm", "--network", "none", box.image, "no-such-program"])
        #expect(missing.status == .exited(127), "\(missing.stderrText)")
        #expect(missing.stderrText.contains("no-such-program"))
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
    }

    @Test func runWithoutRemoveKeepsTheExitedContainer() throws {
        let out = try box.docker([
            "run", "--name", "kept", "--network", "none", box.image, "sh", "-c", "echo kept; exit 4",
        ])
        #expect(out.status == .exited(4), "\(out.stderrText)")
        #expect(out.stdoutText == "kept\n")
        let state = try box.docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kept"])
        #expect(state.stdoutText.trimmed == "exited 4")
        #expect(
            try box.docker(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).stdoutText.hasPrefix("kept Exited (4)"))
        #expect(try box.docker(["ps", "--format", "{{.Names}}"]).stdoutText.isEmpty)
        // start -a attaches before the start, as run does: the second run's output and status.
        let again = try box.docker(["start", "-a", "kept"])
        #expect(again.status == .exited(4), "\(again.stderrText)")
        #expect(again.stdoutText == "kept\n")
    }

    @Test func aTerminalContainersOutputComesRaw() throws {
        let out = try box.docker([
            "run", "--rm", "-t", "--network", "none", box.image, "sh", "-c", "echo on-a-tty; tty; exit 2",
        ])
        #expect(out.status == .exited(2), "\(out.stderrText)")
        // The terminal's line discipline, not docker's framing: CR LF, and both lines on stdout.
        #expect(out.stdoutText.hasPrefix("on-a-tty\r\n/dev/"), "\(out.stdoutText)")
        _ = try box.docker([
            "run", "-d", "-t", "--name", "ttylog", "--network", "none", box.image, "sh", "-c",
            "echo logged >&2; sleep 100",
        ])
        #expect(try box.eventually { try box.docker(["logs", "ttylog"]).stdoutText == "logged\r\n" })
        #expect(try box.docker(["rm", "-f", "ttylog"]).status == .exited(0))
    }

    @Test func detachedContainerIsListedInspectedLoggedStoppedAndRemoved() throws {
        let started = try box.docker([
            "run", "-d", "--name", "web", "--network", "none", "--label", "tier=web", box.image, "sh", "-c",
            "trap 'echo stopping; exit 0' TERM; echo started; echo warn >&2; sleep 100 & wait",
        ])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        let id = started.stdoutText.trimmed
        #expect(id.count == 64)

        let listed = try box.docker(["ps", "--format", "{{.ID}} {{.Names}} {{.State}} {{.Image}}"])
        #expect(listed.stdoutText.trimmed == "\(id.prefix(12)) web running \(box.image)", "\(listed.stderrText)")
        #expect(try box.docker(["ps", "-q", "--filter", "label=tier=web"]).stdoutText.trimmed == String(id.prefix(12)))
        #expect(try box.docker(["ps", "-q", "--filter", "label=tier=db"]).stdoutText.isEmpty)
        #expect(
            try box.docker(["ps", "-q", "--filter", "name=web", "--filter", "status=running"]).stdoutText.trimmed
                == String(id.prefix(12)))
        #expect(try box.docker(["ps", "-q", "--filter", "status=exited"]).stdoutText.isEmpty)
        #expect(
            try box.docker(["ps", "-q", "--filter", "id=\(id.prefix(5))"]).stdoutText.trimmed == String(id.prefix(12)))
        let running = try box.docker([
            "inspect", "--format", "{{.State.Running}} {{.Name}} {{.Config.Labels.tier}}", "web",
        ])
        #expect(running.stdoutText.trimmed == "true /web web", "\(running.stderrText)")

        // Both streams come back apart (the multiplexed framing).
        #expect(try box.eventually { try box.docker(["logs", "web"]).stdoutText == "started\n" })
        // A follower started now sees the rest, and ends when the container stops.
        let followed = box.base + "/followed"
        let follower = try box.spawnDocker(["logs", "-f", "web"], output: followed)
        let logs = try box.docker(["logs", "web"])
        #expect(logs.stderrText == "warn\n")
        let stamped = try box.docker(["logs", "--timestamps", "web"]).stdoutText
        #expect(stamped.hasSuffix(" started\n") && stamped.hasPrefix("20"), "\(stamped)")

        let stopped = try box.docker(["stop", "web"])
        #expect(stopped.status == .exited(0), "\(stopped.stderrText)")
        #expect(stopped.stdoutText.trimmed == "web")
        #expect(
            try box.docker(["inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", "web"]).stdoutText.trimmed
                == "false 0")
        #expect(try box.docker(["logs", "web"]).stdoutText == "started\nstopping\n")
        #expect(try ChildProcess.wait(follower) == .exited(0))
        #expect(try FileSystem.readString(followed) == "started\nstopping\n")
        // Stopping a stopped container is not an error (the daemon's 304).
        #expect(try box.docker(["stop", "web"]).status == .exited(0))

        #expect(try box.docker(["rm", "web"]).status == .exited(0))
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
        let again = try box.docker(["rm", "web"])
        #expect(again.status != .exited(0))
        #expect(again.stderrText.contains("No such container: web"), "\(again.stderrText)")
    }

    @Test func waitKillAndForcedRemoveWorkOnRunningContainers() throws {
        let quick = try box.docker(["run", "-d", "--network", "none", box.image, "sh", "-c", "exit 7"])
        #expect(quick.status == .exited(0), "\(quick.stderrText)")
        let quickID = quick.stdoutText.trimmed
        let waited = try box.docker(["wait", quickID])
        #expect(waited.stdoutText.trimmed == "7", "\(waited.stderrText)")

        _ = try box.docker(["run", "-d", "--name", "victim", "--network", "none", box.image, "sleep", "100"])
        let refused = try box.docker(["rm", "victim"])
        #expect(refused.status != .exited(0))
        #expect(
            refused.stderrText.contains("stop the container before removing or force remove"), "\(refused.stderrText)")
        #expect(try box.docker(["kill", "victim"]).status == .exited(0))
        #expect(try box.docker(["wait", "victim"]).stdoutText.trimmed == "137")
        let notRunning = try box.docker(["kill", "victim"])
        #expect(notRunning.status != .exited(0))
        #expect(notRunning.stderrText.contains("is not running"), "\(notRunning.stderrText)")

        _ = try box.docker(["run", "-d", "--name", "forced", "--network", "none", box.image, "sleep", "100"])
        #expect(try box.docker(["restart", "-t", "0", "forced"]).status == .exited(0))
        #expect(
            try box.docker(["inspect", "--format", "{{.State.Running}} {{.RestartCount}}", "forced"]).stdoutText.trimmed
                == "true 0")
        #expect(try box.docker(["rm", "-f", "forced", "victim", quickID]).status == .exited(0))
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
    }

    @Test func unknownObjectsAndTakenNamesFailAsWithDocker() throws {
        let inspect = try box.docker(["inspect", "nosuch"])
        #expect(inspect.status != .exited(0))
        #expect(inspect.stderrText.contains("No such object: nosuch"), "\(inspect.stderrText)")
        let logs = try box.docker(["logs", "nosuch"])
        #expect(logs.status != .exited(0))
        #expect(logs.stderrText.contains("No such container: nosuch"), "\(logs.stderrText)")
        let image = try box.docker(["run", "--rm", "--pull", "never", "no/such:image", "true"])
        #expect(image.status == .exited(125))
        #expect(image.stderrText.contains("No such image"), "\(image.stderrText)")

        #expect(
            try box.docker(["create", "--name", "dup", "--network", "none", box.image, "true"]).status == .exited(0))
        let second = try box.docker(["create", "--name", "dup", "--network", "none", box.image, "true"])
        #expect(second.status != .exited(0))
        #expect(
            second.stderrText.contains("Conflict. The container name \"/dup\" is already in use"),
            "\(second.stderrText)")
        // docker's name rule: two characters at least, no spaces.
        for bad in ["bad name", "x"] {
            let refused = try box.docker(["create", "--name", bad, box.image, "true"])
            #expect(refused.status != .exited(0))
            #expect(refused.stderrText.contains("Invalid container name"), "\(refused.stderrText)")
        }
        #expect(try box.docker(["ps", "-a", "--format", "{{.Names}}"]).stdoutText == "dup\n")
    }

    /// The docker SDK for Python (pip's `docker`, when installed) through the same socket: its `run`
    /// is create, start, wait and logs rather than attach; errors come back as its typed exceptions.
    @Test(.enabled(if: pythonSDK, "needs the docker SDK for Python"))
    func thePythonSDKDrivesTheSameAPI() throws {
        let script = box.base + "/sdk.py"
        try FileSystem.writeAtomically(script, Array(Self.sdkScript.utf8))
        let out = try ChildProcess.run(
            python3 ?? "python3", arguments: ["python3", script, box.socket, box.image],
            environment: ChildProcess.currentEnvironment.filter { !$0.hasPrefix("DOCKER_") })
        #expect(out.status == .exited(0), "\(out.stdoutText)\(out.stderrText)")
        #expect(out.stdoutText.hasSuffix("all good\n"), "\(out.stdoutText)\(out.stderrText)")
    }

    static let sdkScript = """
        import sys, docker
        socket, image = sys.argv[1], sys.argv[2]
        c = docker.DockerClient(base_url="unix://" + socket)
        assert c.ping()
        assert c.version()["ApiVersion"] == "1.47"
        out = c.containers.run(image, ["sh", "-c", "echo hi; echo err >&2"], remove=True, network_mode="none", stderr=True)
        assert out == b"hi\\nerr\\n", out
        once = c.containers.run(image, ["sh", "-c", "echo once; exit 6"], detach=True, name="sdk-once", network_mode="none")
        assert once.wait()["StatusCode"] == 6
        assert once.logs() == b"once\\n", once.logs()
        once.remove()
        long = c.containers.run(image, ["sleep", "100"], detach=True, name="sdk-long", network_mode="none", labels={"suite": "sdk"})
        assert [x.name for x in c.containers.list(filters={"label": "suite=sdk"})] == ["sdk-long"]
        long.reload()
        assert long.status == "running" and long.attrs["Config"]["Labels"]["suite"] == "sdk"
        long.stop(timeout=0)
        long.reload()
        assert long.status == "exited" and long.attrs["State"]["ExitCode"] == 137, long.attrs["State"]
        long.remove()
        assert image in [t for i in c.images.list() for t in i.tags]
        assert c.images.get(image).attrs["Config"]["WorkingDir"] == "/srv"
        try:
            c.containers.get("nosuch")
            raise SystemExit("found nosuch")
        except docker.errors.NotFound as e:
            assert "No such container: nosuch" in e.explanation
        try:
            c.containers.create(image, "true", name="sdk-long2", network_mode="none", pid_mode="host")
            raise SystemExit("pid_mode accepted")
        except docker.errors.APIError as e:
            assert e.status_code == 400 and "PidMode" in e.explanation, e.explanation
        assert c.containers.list(all=True) == []
        print("all good")
        """

    @Test func theDaemonStopsCleanlyOnSIGTERMAndItsContainersKeepRunning() throws {
        let started = try box.docker([
            "run", "-d", "--name", "survivor", "--network", "none", box.image, "sleep", "100",
        ])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        let status = try box.stopDaemon()
        #expect(status == .exited(0), "\(box.daemonLog)")
        #expect(!FileSystem.exists(box.socket))
        // The container is its monitor's: still running, as the CLI beside the (gone) daemon sees.
        let seen = try box.berthCLI(["inspect", "--format", "{{.State.Status}}", "survivor"])
        #expect(seen.stdoutText.trimmed == "running", "\(seen.stderrText)")
        // A new daemon over the same store serves it again.
        try box.startDaemon()
        #expect(try box.docker(["ps", "--format", "{{.Names}}"]).stdoutText == "survivor\n")
    }
}

/// The HTTP surface below the CLI: headers, versions, errors and hostile bodies, on raw requests.
@Suite(.serialized, .enabled(if: isRealRoot, "starts berth engine: needs real root"))
final class DockerHTTPTests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("http") }
    deinit { box.tearDown() }

    @Test func pingCarriesTheNegotiationHeaders() throws {
        for method in ["GET", "HEAD"] {
            let reply = try rawExchange(
                box.socket, "\(method) /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            #expect(reply.status == 200)
            #expect(reply.headers["api-version"] == "1.47")
            #expect(reply.headers["ostype"] == "linux")
            #expect(reply.headers["docker-experimental"] == "false")
            #expect(reply.headers["builder-version"] != nil)
            #expect(reply.headers["cache-control"]?.contains("no-cache") == true)
            #expect(reply.body == (method == "GET" ? "OK" : ""))
        }
        let versioned = try rawExchange(
            box.socket, "GET /v1.24/_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        #expect(versioned.status == 200)
        let tooNew = try rawExchange(
            box.socket, "GET /v1.51/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        #expect(tooNew.status == 400)
        #expect(tooNew.body.contains("client version 1.51 is too new"))
        let tooOld = try rawExchange(
            box.socket, "GET /v1.23/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        #expect(tooOld.status == 400)
        #expect(tooOld.body.contains("Minimum supported API version is 1.24"))
        let unknown = try rawExchange(
            box.socket, "GET /v1.47/no/such/endpoint HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        #expect(unknown.status == 404)
        #expect(unknown.body == "{\"message\":\"page not found\"}")
    }

    @Test func malformedBodiesAreRefusedWithA400AndTheDaemonCarriesOn() throws {
        let bodies = [
            "{", "not json", "[1,2]", "{\"Image\": 5}", "{\"Image\":\"x\",\"HostConfig\":{\"Memory\":\"lots\"}}",
            "{\"Image\":\"x\",\"Cmd\":{\"a\":1}}", String(repeating: "[", count: 100_000), "",
        ]
        for body in bodies {
            let reply = try rawExchange(
                box.socket,
                "POST /v1.47/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
            #expect(reply.status == 400, "\(body.prefix(40)): \(reply.body)")
            #expect(reply.body.hasPrefix("{\"message\":\""), "\(reply.body)")
        }
        let unsupported = "{\"Image\":\"\(box.image)\",\"HostConfig\":{\"PidMode\":\"host\"}}"
        let refused = try rawExchange(
            box.socket,
            "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: \(unsupported.utf8.count)\r\nConnection: close\r\n\r\n"
                + unsupported)
        #expect(refused.status == 400)
        #expect(refused.body.contains("HostConfig.PidMode is not supported"))
        // A body announced over the limit is refused before it is sent.
        let huge = try rawExchange(
            box.socket, "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 100000000\r\n\r\n")
        #expect(huge.status == 413)
        // Nothing was created, and the daemon still answers.
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
        #expect(
            try rawExchange(box.socket, "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").status
                == 200)
    }

    @Test func waitSendsItsHeadersBeforeTheContainerExits() throws {
        let body =
            "{\"Image\":\"\(box.image)\",\"Cmd\":[\"sh\",\"-c\",\"read line; exit 5\"],\"OpenStdin\":true,\"HostConfig\":{\"NetworkMode\":\"none\"}}"
        let created = try rawExchange(
            box.socket,
            "POST /containers/create?name=waiter HTTP/1.1\r\nHost: docker\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                + body)
        #expect(created.status == 201, "\(created.body)")
        // The wait's head arrives while the container has not even started.
        let connection = try UnixSocket.connect(box.socket)
        try connection.send(
            Array("POST /containers/waiter/wait?condition=next-exit HTTP/1.1\r\nHost: docker\r\n\r\n".utf8))
        var head: [UInt8] = []
        while !String(decoding: head, as: UTF8.self).contains("\r\n\r\n") {
            let chunk = try connection.read(upTo: 4096)
            if chunk.isEmpty { break }
            head += chunk
        }
        #expect(String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))
        #expect(try box.docker(["start", "waiter"]).status == .exited(0))
        let attached = try box.docker(["attach", "waiter"], input: "go\n")
        #expect(attached.status == .exited(5), "\(attached.stderrText)")
        let rest = String(decoding: head + (try readUntil(connection, "}")), as: UTF8.self)
        #expect(rest.contains("{\"Error\":null,\"StatusCode\":5}"), "\(rest)")
    }

    @Test func followsAndWaitsEndWhenTheirClientLeaves() throws {
        let started = try box.docker([
            "run", "-d", "--name", "talker", "--network", "none", box.image, "sh", "-c", "echo one; sleep 100",
        ])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        // The threads serving requests (named docker-api) end with their responses. One stays: the
        // engine's reaper of the monitor the start spawned, which inherited the start's thread name.
        #expect(try box.eventually { self.requestThreads() == 1 }, "\(requestThreads())")
        let follow = try UnixSocket.connect(box.socket)
        try follow.send(
            Array("GET /v1.47/containers/talker/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n\r\n".utf8))
        #expect(String(decoding: try readUntil(follow, "one"), as: UTF8.self).contains("one"))
        let wait = try UnixSocket.connect(box.socket)
        try wait.send(Array("POST /v1.47/containers/talker/wait HTTP/1.1\r\nHost: docker\r\n\r\n".utf8))
        #expect(String(decoding: try readUntil(wait, "\r\n\r\n"), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))
        // Each is served by a thread of its own while the container runs …
        #expect(requestThreads() == 3)
        follow.close()
        wait.close()
        // … which ends when its client hangs up, not when the container does.
        #expect(try box.eventually { self.requestThreads() == 1 }, "\(requestThreads()) request threads left")
        #expect(try box.docker(["inspect", "--format", "{{.State.Running}}", "talker"]).stdoutText.trimmed == "true")

        // An attachment is relayed by a thread of its own (docker-attach) until its client goes.
        let attach = try UnixSocket.connect(box.socket)
        try attach.send(
            Array(
                ("POST /v1.47/containers/talker/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n"
                    + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n").utf8))
        let upgraded = String(decoding: try readUntil(attach, "\r\n\r\n"), as: UTF8.self)
        #expect(upgraded.hasPrefix("HTTP/1.1 101 UPGRADED\r\n"), "\(upgraded)")
        #expect(upgraded.contains("Content-Type: application/vnd.docker.multiplexed-stream"))
        #expect(upgraded.contains("Upgrade: tcp"))
        #expect(try box.eventually { self.threads(named: "docker-attach") == 1 })
        attach.close()
        #expect(try box.eventually { self.threads(named: "docker-attach") == 0 })
        // One made before its container starts and abandoned: the start goes ahead without it.
        #expect(
            try box.docker(["create", "--name", "later", "--network", "none", box.image, "sh", "-c", "echo later"])
                .status == .exited(0))
        let early = try UnixSocket.connect(box.socket)
        try early.send(
            Array(
                ("POST /v1.47/containers/later/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"
                    + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n").utf8))
        #expect(String(decoding: try readUntil(early, "\r\n\r\n"), as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        early.close()
        #expect(try box.docker(["start", "later"]).status == .exited(0))
        #expect(try box.docker(["wait", "later"]).stdoutText.trimmed == "0")
        #expect(try box.docker(["logs", "later"]).stdoutText == "later\n")
        #expect(threads(named: "docker-attach") == 0)
    }

    @Test func theSocketIsOpenToRootAndItsGroupOnly() throws {
        var info = stat()
        #expect(stat(box.socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660 && info.st_uid == 0 && info.st_gid == 0)
        // With --group, in the engine's own 0700 run directory (as /run/berth/docker.sock is): the socket
        // goes to the group, and the directory lets the group (only) reach it.
        try box.stopDaemon()
        guard let group = getgrnam("daemon")?.pointee.gr_gid else { throw TestFailure("no group daemon") }
        let socket = box.run + "/docker.sock"
        try box.startDaemon(socket: socket, extra: ["--group", "daemon"])
        #expect(stat(socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660 && info.st_uid == 0 && info.st_gid == group)
        #expect(stat(box.run, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o710 && info.st_gid == group)
        #expect(try box.docker(["version", "--format", "{{.Server.Os}}"]).stdoutText.trimmed == "linux")
    }

    /// The daemon's threads serving a request.
    /// docker's StdinOnce: `run -i` attached (StdinOnce true) ends the container's stdin with the
    /// client's input; `run -d -i` (false) keeps it open for whoever attaches next.
    @Test func stdinOnceDecidesWhetherTheEndOfAClientsInputClosesStdin() throws {
        let once = try box.docker(["run", "-i", "--rm", "--network", "none", box.image, "cat"], input: "hi\n")
        #expect(once.status == .exited(0) && once.stdoutText == "hi\n", "\(once.stderrText)")

        let kept = try box.docker(["run", "-d", "-i", "--name", "keep", "--network", "none", box.image, "cat"])
        #expect(kept.status == .exited(0), "\(kept.stderrText)")
        #expect(
            try box.docker(["inspect", "--format", "{{.Config.OpenStdin}} {{.Config.StdinOnce}}", "keep"]).stdoutText
                .trimmed == "true false")
        for word in ["first", "second"] {
            let attach = try UnixSocket.connect(box.socket)
            try attach.send(
                Array(
                    ("POST /v1.47/containers/keep/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"
                        + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n").utf8))
            #expect(String(decoding: try readUntil(attach, "\r\n\r\n"), as: UTF8.self).hasPrefix("HTTP/1.1 101"))
            try attach.send(Array((word + "\n").utf8))
            _ = shutdown(attach.rawValue, Int32(SHUT_WR))
            // cat echoes the line (multiplexed: an 8-byte header, then the text) and, its stdin still
            // open, keeps running for the second client.
            #expect(String(decoding: try readUntil(attach, word), as: UTF8.self).contains(word))
            attach.close()
        }
        #expect(try box.docker(["inspect", "--format", "{{.State.Running}}", "keep"]).stdoutText.trimmed == "true")
        #expect(try box.docker(["rm", "-f", "keep"]).status == .exited(0))
    }

    /// HostConfig fields the docker CLI sends: honoured (OomScoreAdj, MemorySwappiness, MaskedPaths,
    /// ReadonlyPaths), or refused by name when set (never silently dropped).
    @Test func hostConfigFieldsAreHonouredOrRefusedByName() throws {
        let adj = try box.docker([
            "run", "--rm", "--network", "none", "--oom-score-adj", "500", box.image, "cat", "/proc/self/oom_score_adj",
        ])
        #expect(adj.status == .exited(0) && adj.stdoutText == "500\n", "\(adj.stderrText)")
        let created = try box.docker([
            "create", "--name", "tuned", "--network", "none", "--oom-score-adj", "-200", "--memory-swappiness", "10",
            box.image, "true",
        ])
        #expect(created.status == .exited(0), "\(created.stderrText)")
        #expect(
            try box.docker([
                "inspect", "--format", "{{.HostConfig.OomScoreAdj}} {{.HostConfig.MemorySwappiness}}", "tuned",
            ])
            .stdoutText.trimmed == "-200 10")
        #expect(try box.docker(["rm", "tuned"]).status == .exited(0))

        for (flags, field) in [
            (["--blkio-weight", "300"], "BlkioWeight"), (["--device-cgroup-rule", "c 1:3 rwm"], "DeviceCgroupRules"),
            (["--isolation", "hyperv"], "invalid isolation"),
        ] {
            let refused = try box.docker(["run", "--rm", "--network", "none"] + flags + [box.image, "true"])
            #expect(
                refused.status != .exited(0) && refused.stderrText.contains(field), "\(flags): \(refused.stderrText)")
        }
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty, "a refused create leaves no container")

        // A client's own masked and read-only paths replace the defaults: /proc/timer_list is masked
        // (reads empty) by default and readable when the list leaves it out.
        func create(_ name: String, hostConfig: String) throws -> Int32 {
            let body =
                #"{"Image":"\#(box.image)","Cmd":["sh","-c","wc -c < /proc/timer_list"],"HostConfig":{"NetworkMode":"none"\#(hostConfig)}}"#
            let out = try ChildProcess.run(
                "/usr/bin/curl",
                arguments: [
                    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", box.socket, "-H",
                    "Content-Type: application/json", "-d", body, "http://docker/v1.47/containers/create?name=\(name)",
                ], environment: [])
            return Int32(out.stdoutText.trimmed) ?? 0
        }
        // The CLI checks the swappiness range itself; the daemon does too, for other clients.
        #expect(try create("swappy", hostConfig: #","MemorySwappiness":200"#) == 400)
        #expect(try create("adjusted", hostConfig: #","OomScoreAdj":2000"#) == 400)
        #expect(try create("masked", hostConfig: "") == 201)
        #expect(try create("open", hostConfig: #","MaskedPaths":[],"ReadonlyPaths":[]"#) == 201)
        let masked = try box.docker(["start", "-a", "masked"])
        let open = try box.docker(["start", "-a", "open"])
        #expect(masked.stdoutText.hasPrefix("0\n"), "\(masked.stdoutText)")
        #expect(!open.stdoutText.hasPrefix("0\n"), "\(open.stdoutText)")
        #expect(
            try box.docker(["inspect", "--format", "{{json .HostConfig.MaskedPaths}}", "open"]).stdoutText.trimmed
                == "[]")
        _ = try box.docker(["rm", "masked", "open"])
    }

    private func requestThreads() -> Int { threads(named: "docker-api") }

    /// The daemon's threads of this name.
    private func threads(named name: String) -> Int {
        let tasks = (try? FileSystem.listDirectory("/proc/\(box.daemon)/task")) ?? []
        return tasks.filter {
            ((try? FileSystem.readString("/proc/\(box.daemon)/task/\($0)/comm")) ?? "").trimmed == name
        }.count
    }

    /// Reads until `marker` appears or the connection ends.
    private func readUntil(_ connection: FileDescriptor, _ marker: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while !String(decoding: bytes, as: UTF8.self).contains(marker) {
            let chunk = try connection.read(upTo: 4096)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }
}
