#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// What dockerd promises on the wire beyond the everyday commands: the 304s of a start or stop that
/// changes nothing, short-ID prefixes, the builder's clear refusal, bodies over the limit however they
/// are framed, detach keys and stdin's end on an attachment, and a volume two running containers share.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && dockerCLI != nil, "runs containers and the docker CLI: needs real root and docker"))
final class DockerProtocolTests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("proto") }
    deinit { box.tearDown() }

    /// One request on a connection of its own (`Connection: close`).
    func exchange(_ method: String, _ path: String, body: String = "") throws -> (
        status: Int, headers: [String: String], body: String
    ) {
        try rawExchange(
            box.socket,
            "\(method) /v1.47\(path) HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    }

    func running(_ name: String) throws -> String {
        try box.docker(["inspect", "--format", "{{.State.Running}}", name]).stdoutText.trimmed
    }

    // MARK: Nothing to do: 304

    @Test func startingARunningAndStoppingAStoppedContainerIsA304WithoutABody() throws {
        let up = try box.docker(["run", "-d", "--name", "up", "--network", "none", box.image, "sleep", "1000"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let again = try exchange("POST", "/containers/up/start")
        #expect(again.status == 304 && again.body.isEmpty, "\(again)")
        #expect(try running("up") == "true")

        #expect(try exchange("POST", "/containers/up/stop?t=0").status == 204)
        #expect(try running("up") == "false")
        let stopped = try exchange("POST", "/containers/up/stop?t=0")
        #expect(stopped.status == 304 && stopped.body.isEmpty, "\(stopped)")
        // A container never started is not running either.
        #expect(
            try box.docker(["create", "--name", "idle", "--network", "none", box.image, "true"]).status == .exited(0))
        let idle = try exchange("POST", "/containers/idle/stop")
        #expect(idle.status == 304 && idle.body.isEmpty, "\(idle)")
        // And the 304s change nothing: a start of the stopped one still starts it.
        #expect(try exchange("POST", "/containers/up/start").status == 204)
        #expect(try running("up") == "true")
        // The CLI takes a 304 as success, as with dockerd.
        #expect(try box.docker(["start", "up"]).status == .exited(0))
        #expect(try box.docker(["rm", "-f", "up", "idle"]).status == .exited(0))
    }

    // MARK: Short IDs

    /// dockerd's GetContainer: a full ID, a name, then a unique ID prefix of any length; a prefix of
    /// several IDs is its InvalidParameter (400) "multiple IDs found with provided prefix: …".
    @Test func aUniqueIDPrefixFindsTheContainerAndAnAmbiguousOneIsDockersError() throws {
        let started = try box.docker(["run", "-d", "--network", "none", box.image, "sleep", "1000"])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        let id = started.stdoutText.trimmed
        let prefix = String(id.prefix(4))
        let inspected = try exchange("GET", "/containers/\(prefix)/json")
        #expect(inspected.status == 200 && inspected.body.contains("\"Id\":\"\(id)\""), "\(inspected.body.prefix(200))")
        let stopped = try exchange("POST", "/containers/\(prefix)/stop?t=0")
        #expect(stopped.status == 204, "\(stopped)")
        #expect(try running(id) == "false")
        #expect(try box.docker(["start", prefix]).stdoutText.trimmed == prefix)
        #expect(try running(id) == "true")

        // More containers until two IDs begin alike (by the seventeenth at the latest: 16 hex digits).
        var ids = [id]
        var shared: Character?
        while shared == nil && ids.count <= 16 {
            let created = try box.docker(["create", "--network", "none", box.image, "true"])
            #expect(created.status == .exited(0), "\(created.stderrText)")
            let new = created.stdoutText.trimmed
            if ids.contains(where: { $0.first == new.first }) { shared = new.first }
            ids.append(new)
        }
        guard let shared else { throw TestFailure("no two of \(ids) begin alike") }
        let ambiguous = try exchange("GET", "/containers/\(shared)/json")
        #expect(ambiguous.status == 400, "\(ambiguous)")
        #expect(ambiguous.body == "{\"message\":\"multiple IDs found with provided prefix: \(shared)\"}")
        let cli = try box.docker(["stop", String(shared)])
        #expect(cli.status != .exited(0))
        #expect(
            cli.stderrText.contains("Error response from daemon: multiple IDs found with provided prefix: \(shared)"),
            "\(cli.stderrText)")
        // Nothing was stopped by the ambiguous request.
        #expect(try running(id) == "true")
        let none = try exchange("GET", "/containers/zzzz/json")
        #expect(none.status == 404 && none.body == "{\"message\":\"No such container: zzzz\"}", "\(none)")
        #expect(try box.docker(["rm", "-f"] + ids).status == .exited(0))
    }

    // MARK: Builds

    @Test func buildsAndBuildKitSessionsAreRefusedAsNotSupportedYet() throws {
        let tar = "not really a tar"
        let build = try rawExchange(
            box.socket,
            "POST /v1.47/build?t=test/built:1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
                + "Content-Length: \(tar.utf8.count)\r\nConnection: close\r\n\r\n\(tar)")
        #expect(build.status == 501, "\(build)")
        #expect(build.headers["content-type"] == "application/json")
        #expect(build.body == "{\"message\":\"building images is not supported by Berth yet\"}", "\(build.body)")
        // buildx opens a session first (an h2c upgrade): refused the same way, not hijacked.
        let session = try UnixSocket.connect(box.socket)
        try session.send(
            Array(
                ("POST /session HTTP/1.1\r\nHost: docker\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                    + "X-Docker-Expose-Session-Uuid: 5f1c\r\nContent-Length: 0\r\n\r\n").utf8))
        let answer = String(decoding: try read(session, until: "yet\"}"), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 501 Not Implemented\r\n"), "\(answer)")
        #expect(answer.hasSuffix("{\"message\":\"BuildKit sessions are not supported by Berth yet\"}"), "\(answer)")
        session.close()

        // The docker CLI (no buildx here: its legacy builder, which POSTs /build) prints the message.
        let context = box.base + "/context"
        try FileSystem.makeDirectories(context, mode: 0o755)
        try FileSystem.writeAtomically(context + "/Dockerfile", Array("FROM \(box.image)\nRUN true\n".utf8))
        let cli = try box.docker(["build", "-t", "test/built:1", context])
        #expect(cli.status != .exited(0))
        #expect(cli.stderrText.contains("building images is not supported by Berth yet"), "\(cli.stderrText)")
        #expect(try box.docker(["images", "-q", "test/built"]).stdoutText.isEmpty)
    }

    // MARK: Bodies over the limit

    /// A chunked body announces no length: it is counted as it comes, refused with a 413 once over the
    /// limit (16 MiB), and the connection closed; the daemon serves the next client.
    @Test func aChunkedBodyOverTheLimitIsA413AndTheDaemonServesOn() throws {
        let connection = try UnixSocket.connect(box.socket)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(connection.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try connection.send(
            Array(
                ("POST /v1.47/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n").utf8))
        let payload = [UInt8](repeating: UInt8(ascii: " "), count: 1 << 20)
        let chunk = Array("100000\r\n".utf8) + payload + Array("\r\n".utf8)
        var sent = 0
        var refusedWhileSending = false
        while sent < 64 {
            do { try connection.send(chunk) } catch {
                refusedWhileSending = true
                break
            }
            sent += 1
        }
        if !refusedWhileSending { try? connection.send(Array("0\r\n\r\n".utf8)) }
        let reply = String(decoding: readToEnd(connection).bytes, as: UTF8.self)
        connection.close()
        #expect(reply.hasPrefix("HTTP/1.1 413 "), "\(reply.prefix(300)) after \(sent) MiB")
        #expect(reply.contains("{\"message\":\"request body larger than 16777216 bytes\"}"), "\(reply.prefix(300))")
        // Refused on the way, not after all 64 MiB: the daemon stopped at the limit.
        #expect(refusedWhileSending || sent < 64, "sent \(sent) MiB")
        #expect(kill(box.daemon, 0) == 0, "the daemon is gone: \(box.daemonLog)")
        let ping = try rawExchange(box.socket, "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        #expect(ping.status == 200 && ping.body == "OK")
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
    }

    // MARK: Attachments

    /// The detach sequence (docker's default ctrl-p,ctrl-q, or the request's `detachKeys`) typed on a
    /// terminal container's attachment: the daemon ends the attachment and the container runs on.
    /// As in dockerd (its escape proxy wraps a terminal's stdin only), a container without a terminal
    /// gets the same bytes as input and the attachment goes on.
    @Test func theDetachKeysEndATerminalsAttachmentAndTheContainerRunsOn() throws {
        let tty = try box.docker(["run", "-d", "-i", "-t", "--name", "tty", "--network", "none", box.image, "cat"])
        #expect(tty.status == .exited(0), "\(tty.stderrText)")
        for (query, keys) in [("&detachKeys=ctrl-x,x", [24, UInt8(ascii: "x")]), ("", [16, 17] as [UInt8])] {
            let attach = try attachTo("tty", query)
            try attach.send(Array("line\(keys[0])\n".utf8))
            #expect(String(decoding: try read(attach, until: "line\(keys[0])\r\n"), as: UTF8.self).contains("line"))
            // Half the sequence, then a byte that breaks it: both go on to the container.
            try attach.send([keys[0], UInt8(ascii: "z"), UInt8(ascii: "\n")])
            #expect(try read(attach, until: "z").contains(UInt8(ascii: "z")))
            try attach.send(keys)
            let rest = readToEnd(attach, within: 20)
            #expect(rest.closed, "the daemon did not end the attachment: \(rest.bytes)")
            attach.close()
            #expect(try running("tty") == "true")
        }
        // The container's terminal still works for the next client.
        let next = try attachTo("tty", "")
        try next.send(Array("after\n".utf8))
        #expect(String(decoding: try read(next, until: "after\r\n"), as: UTF8.self).contains("after"))
        next.close()

        let plain = try box.docker(["run", "-d", "-i", "--name", "plain", "--network", "none", box.image, "cat"])
        #expect(plain.status == .exited(0), "\(plain.stderrText)")
        let attach = try attachTo("plain", "&detachKeys=ctrl-x,x")
        try attach.send([UInt8(ascii: "a"), 24, UInt8(ascii: "x"), UInt8(ascii: "b"), UInt8(ascii: "\n")])
        // cat echoes them, framed (an 8-byte header, then the bytes).
        #expect(try read(attach, until: "b\n").suffix(5) == [UInt8(ascii: "a"), 24, UInt8(ascii: "x"), 98, 10])
        try attach.send(Array("still\n".utf8))
        #expect(String(decoding: try read(attach, until: "still\n"), as: UTF8.self).hasSuffix("still\n"))
        attach.close()
        #expect(try running("plain") == "true")
        #expect(try box.docker(["rm", "-f", "tty", "plain"]).status == .exited(0))
    }

    /// `docker run -i` half-closes its connection at the end of its input: the container's stdin ends,
    /// so `cat` returns and what follows it runs.
    @Test func theEndOfARunsInputEndsTheContainersStdin() throws {
        let out = try box.docker(
            ["run", "-i", "--rm", "--network", "none", box.image, "sh", "-c", "cat; echo done"], input: "one\ntwo\n")
        #expect(out.status == .exited(0), "\(out.stderrText)")
        #expect(out.stdoutText == "one\ntwo\ndone\n", "\(out.stdoutText)")
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
    }

    // MARK: Volumes

    /// One container writes a counter into a named volume in a loop while another, running at the
    /// same time, reads it: the reader sees the writer's value change under it.
    @Test func aVolumeIsWrittenAndReadByTwoRunningContainersAtOnce() throws {
        #expect(try box.docker(["volume", "create", "live"]).status == .exited(0))
        let writer = try box.docker([
            "run", "-d", "--name", "writer", "--network", "none", "-v", "live:/data", box.image, "sh", "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /data/count.tmp; mv /data/count.tmp /data/count; sleep 0.05; done",
        ])
        #expect(writer.status == .exited(0), "\(writer.stderrText)")
        let reader = try box.docker([
            "run", "-d", "--name", "reader", "--network", "none", "-v", "live:/data:ro", box.image, "sh", "-c",
            "until [ -s /data/count ]; do sleep 0.05; done; first=$(cat /data/count); "
                + "until [ \"$(cat /data/count)\" -gt \"$first\" ]; do sleep 0.05; done; "
                + "echo \"saw $first then $(cat /data/count)\"",
        ])
        #expect(reader.status == .exited(0), "\(reader.stderrText)")
        #expect(try box.eventually(30) { try self.running("reader") == "false" })
        let state = try box.docker(["inspect", "--format", "{{.State.ExitCode}}", "reader"]).stdoutText.trimmed
        #expect(state == "0")
        let seen = try box.docker(["logs", "reader"]).stdoutText
        let numbers = seen.split(separator: " ").compactMap { Int($0.trimmed) }
        #expect(seen.hasPrefix("saw ") && numbers.count == 2 && numbers[1] > numbers[0], "\(seen)")
        // The writer ran all along, and its latest value is the volume's, as the host sees it too.
        #expect(try running("writer") == "true")
        let onHost = try FileSystem.readString(box.root + "/volumes/live/_data/count").trimmed
        #expect((Int(onHost) ?? 0) >= numbers[1], "\(onHost)")
        let busy = try box.docker(["volume", "rm", "live"])
        #expect(busy.status != .exited(0) && busy.stderrText.contains("volume is in use"), "\(busy.stderrText)")
        #expect(try box.docker(["rm", "-f", "writer", "reader"]).status == .exited(0))
        #expect(try box.docker(["volume", "rm", "live"]).status == .exited(0))
    }

    // MARK: Helpers

    /// An upgraded attachment to `name` with stdin and stdout, past its `101 UPGRADED`.
    func attachTo(_ name: String, _ query: String) throws -> BerthOS.FileDescriptor {
        let attach = try UnixSocket.connect(box.socket)
        try attach.send(
            Array(
                ("POST /v1.47/containers/\(name)/attach?stream=1&stdin=1&stdout=1\(query) HTTP/1.1\r\n"
                    + "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").utf8))
        let head = String(decoding: try read(attach, until: "\r\n\r\n"), as: UTF8.self)
        #expect(head.hasPrefix("HTTP/1.1 101 UPGRADED\r\n"), "\(head)")
        return attach
    }
}

/// Reads until `marker` appears or the connection ends.
func read(_ connection: BerthOS.FileDescriptor, until marker: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    while !String(decoding: bytes, as: UTF8.self).contains(marker) {
        let chunk = try connection.read(upTo: 4096)
        if chunk.isEmpty { break }
        bytes += chunk
    }
    return bytes
}

/// Everything until the peer closes (a reset after its last bytes counts as closed), or until
/// `seconds` pass with the connection still open.
func readToEnd(_ connection: BerthOS.FileDescriptor, within seconds: Double = 30) -> (bytes: [UInt8], closed: Bool) {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    let deadline = Timestamp.monotonic() + seconds
    while true {
        let left = deadline - Timestamp.monotonic()
        var entry = pollfd(fd: connection.rawValue, events: Int16(POLLIN), revents: 0)
        guard left > 0, poll(&entry, 1, Int32(left * 1000)) > 0 else { return (bytes, false) }
        let n = buffer.withUnsafeMutableBytes { Glibc.read(connection.rawValue, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return (bytes, true) }
        bytes += buffer[0..<n]
    }
}

/// The everyday SDK calls beyond the first suite's: info and df, a port the daemon picks, a restart
/// policy that restarts, logs followed as they are written, and two containers on a user network
/// reaching each other by name (on the engine's bridge, as DockerObjectCLITests' networks are).
@Suite(
    .serialized,
    .enabled(if: isRealRoot && pythonSDK, "runs containers and the Python SDK: needs real root and the SDK"))
final class DockerSDKDailyTests {
    let box: DaemonBox
    let suffix = String(UInt32.random(in: 0...UInt32.max) % 100000)

    init() throws { box = try DaemonBox("sdkdaily") }
    deinit {
        if let ids = try? box.berthCLI(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? box.berthCLI(["rm", "-f"] + ids)
        }
        _ = try? box.berthCLI(["network", "rm", "sdkpeers\(suffix)"])
        box.tearDown()
    }

    @Test func infoDfPortsRestartsFollowedLogsAndNamesOnANetworkThroughThePythonSDK() throws {
        let script = box.base + "/daily.py"
        try FileSystem.writeAtomically(script, Array(Self.script.utf8))
        let out = try ChildProcess.run(
            python3 ?? "python3", arguments: ["python3", script, box.socket, box.image, suffix, box.root],
            environment: ChildProcess.currentEnvironment.filter { !$0.hasPrefix("DOCKER_") })
        #expect(out.status == .exited(0), "\(out.stdoutText)\(out.stderrText)")
        #expect(out.stdoutText.hasSuffix("all good\n"), "\(out.stdoutText)\(out.stderrText)")
    }

    static let script = """
        import sys, time, urllib.request, docker
        socket, image, suffix, root = sys.argv[1:5]
        c = docker.DockerClient(base_url="unix://" + socket)

        def until(what, condition, seconds=30):
            deadline = time.time() + seconds
            while not condition():
                if time.time() > deadline:
                    raise SystemExit("timed out waiting for " + what)
                time.sleep(0.05)

        info = c.info()
        assert info["OSType"] == "linux" and info["DockerRootDir"] == root, info
        assert info["Images"] == 1 and info["Containers"] == 0 and info["ServerVersion"] == "0.1.0", info
        df = c.df()
        assert [i["RepoTags"] for i in df["Images"]] == [[image]], df["Images"]
        assert df["Containers"] == [] and df["Volumes"] == [] and df["LayersSize"] > 0, df

        # A port the daemon picks (ports={'80/tcp': None}), reached on the host's loopback.
        web = c.containers.run(image, ["sh", "-c", "echo served > /srv/index.html; exec httpd -f -p 80 -h /srv"],
                               detach=True, name="sdk-web", ports={"80/tcp": None},
                               restart_policy={"Name": "unless-stopped"})
        web.reload()
        port = int(web.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        assert port > 0, web.attrs["NetworkSettings"]["Ports"]
        assert web.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", web.attrs["HostConfig"]
        body = []
        def fetched():
            try:
                body.append(urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port, timeout=5).read())
                return True
            except OSError:
                return False
        until("the published port", fetched)
        assert body[-1] == b"served\\n", body
        info = c.info()
        assert info["Containers"] == 1 and info["ContainersRunning"] == 1, info

        # on-failure:2 restarts a failing container twice, then leaves it exited.
        failing = c.containers.run(image, ["sh", "-c", "echo attempt; exit 3"], detach=True, network_mode="none",
                                   restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        def gave_up():
            failing.reload()
            return failing.attrs["RestartCount"] == 2 and failing.status == "exited"
        until("two restarts", gave_up)
        assert failing.attrs["State"]["ExitCode"] == 3, failing.attrs["State"]
        assert failing.logs() == b"attempt\\n" * 3, failing.logs()

        # Followed logs come as they are written: "second" only exists after "first" was read.
        talker = c.containers.run(image, ["sh", "-c", "echo first; until [ -e /tmp/go ]; do sleep 0.05; done; echo second"],
                                  detach=True, network_mode="none")
        stream = talker.logs(stream=True, follow=True)
        assert next(stream) == b"first\\n"
        assert talker.exec_run(["touch", "/tmp/go"]).exit_code == 0
        assert next(stream) == b"second\\n"
        assert list(stream) == []
        assert talker.wait()["StatusCode"] == 0

        net = c.networks.create("sdkpeers" + suffix)
        a = c.containers.run(image, ["sleep", "60"], detach=True, name="sdk-a", network=net.name)
        b = c.containers.run(image, ["sleep", "60"], detach=True, name="sdk-b", network=net.name)
        for source, target in ((a, "sdk-b"), (b, "sdk-a")):
            code, out = source.exec_run(["ping", "-c", "1", "-W", "5", target])
            assert code == 0 and b"1 packets received" in out, (target, code, out)
        for x in (a, b, talker, failing, web):
            x.remove(force=True)
        net.remove()
        assert c.containers.list(all=True) == []
        print("all good")
        """
}
