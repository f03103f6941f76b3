#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// `berth engine` as a service: TCP with TLS and client certificates, one store shared with the
/// `berth` CLI, and what a SIGKILL under load leaves behind.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && dockerCLI != nil, "runs containers and the docker CLI: needs real root and docker"))
final class DockerDaemonTests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("daemon") }
    deinit { box.tearDown() }

    // MARK: TCP with TLS

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl as docker's
    /// "Protect the Docker daemon socket" guide makes them. Returns the directory (ca.pem, cert.pem,
    /// key.pem for the client, as DOCKER_CERT_PATH expects; server.pem, server-key.pem).
    func makeCertificates() throws -> String {
        let dir = box.base + "/tls"
        try FileSystem.makeDirectories(dir, mode: 0o700)
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "ca-key.pem", "-out", "ca.pem",
                "-days", "2", "-subj", "/CN=berth-test-ca",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server-key.pem",
                "-out", "server.csr",
                "-subj", "/CN=localhost",
            ],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out",
                "server.pem",
                "-days", "2", "-extfile", "server.ext",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out",
                "client.csr",
                "-subj", "/CN=client",
            ],
            [
                "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out",
                "cert.pem",
                "-days", "2", "-extfile", "client.ext",
            ],
            // A client certificate from a CA the daemon does not trust.
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "stranger-key.pem",
                "-out", "stranger.pem", "-days", "2", "-subj", "/CN=stranger",
            ],
        ]
        try FileSystem.writeAtomically(
            dir + "/server.ext", Array("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".utf8))
        try FileSystem.writeAtomically(dir + "/client.ext", Array("extendedKeyUsage=clientAuth\n".utf8))
        guard let openssl = ChildProcess.lookup("openssl", path: "/usr/bin:/bin") else {
            throw TestFailure("no openssl")
        }
        for step in steps {
            let made = try ChildProcess.run(
                "/bin/sh", arguments: ["sh", "-c", "cd \"$0\" && exec \"$@\"", dir, openssl] + step,
                environment: [standardPath])
            guard made.status.succeeded else { throw TestFailure("openssl \(step): \(made.stderrText)") }
        }
        return dir
    }

    func dockerOverTLS(_ address: String, certificates: String, _ arguments: [String]) throws -> ChildProcess.Output {
        guard let dockerCLI else { throw TestFailure("no docker CLI") }
        return try ChildProcess.run(
            dockerCLI, arguments: ["docker"] + arguments,
            environment: [
                "DOCKER_HOST=\(address)", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=\(certificates)",
                "DOCKER_CONFIG=\(box.base)/docker-config", standardPath, "HOME=\(box.base)",
            ])
    }

    @Test func tcpIsServedOnlyWithTLSAndClientCertificates() throws {
        let tls = try makeCertificates()
        try box.stopDaemon()
        try box.startDaemon(extra: [
            "-H", "tcp://127.0.0.1:0", "--tlsverify", "--tlscacert", tls + "/ca.pem",
            "--tlscert", tls + "/server.pem", "--tlskey", tls + "/server-key.pem",
        ])
        guard let line = box.readyText.split(separator: "\n").first(where: { $0.hasPrefix("ready tcp://") }) else {
            throw TestFailure("no tcp listener in \(box.readyText)")
        }
        let address = String(line.dropFirst("ready ".count))
        #expect(!address.hasSuffix(":0"), "the chosen port is printed: \(address)")

        let version = try dockerOverTLS(address, certificates: tls, ["version", "--format", "{{.Server.APIVersion}}"])
        #expect(version.status == .exited(0), "\(version.stderrText)")
        #expect(version.stdoutText.trimmed == "1.47")
        // An attached run hijacks the connection: the stream stays inside TLS.
        let run = try dockerOverTLS(
            address, certificates: tls,
            ["run", "--rm", "--network", "none", box.image, "sh", "-c", "echo over-tls; exit 3"])
        #expect(run.status == .exited(3), "\(run.stderrText)")
        #expect(run.stdoutText == "over-tls\n")
        // The unix socket still serves beside it, the same store.
        #expect(try box.docker(["version", "--format", "{{.Server.Os}}"]).stdoutText.trimmed == "linux")

        // No client certificate, one from another CA, or no TLS at all: refused before any HTTP.
        guard let curl = ChildProcess.lookup("curl", path: "/usr/bin:/bin") else { throw TestFailure("no curl") }
        let url = "https" + address.dropFirst(3) + "/_ping"
        let withCertificate = try ChildProcess.run(
            curl,
            arguments: [
                "curl", "-sS", "--cacert", tls + "/ca.pem", "--cert", tls + "/cert.pem",
                "--key", tls + "/key.pem", url,
            ], environment: [standardPath])
        #expect(withCertificate.stdoutText == "OK", "\(withCertificate.stderrText)")
        for extra in [[String](), ["--cert", tls + "/stranger.pem", "--key", tls + "/stranger-key.pem"]] {
            let refused = try ChildProcess.run(
                curl, arguments: ["curl", "-sS", "--cacert", tls + "/ca.pem"] + extra + [url],
                environment: [standardPath])
            #expect(!refused.status.succeeded && refused.stdoutText.isEmpty, "\(extra): \(refused.stdoutText)")
        }
        let plain = try ChildProcess.run(
            curl, arguments: ["curl", "-sS", "http" + address.dropFirst(3) + "/_ping"], environment: [standardPath])
        #expect(!plain.status.succeeded && plain.stdoutText.isEmpty)
    }

    @Test func tcpWithoutTLSOrBadAddressesIsRefusedAtStart() throws {
        for (arguments, mentions) in [
            (["-H", "tcp://127.0.0.1:2376"], "--tlsverify"),
            (["-H", "fd://"], "socket activation"),
            (["-H", "unix://relative.sock"], "absolute path"),
            (["-H", "tcp://127.0.0.1:99999", "--tlsverify"], "invalid port"),
            (
                [
                    "-H", "tcp://127.0.0.1:0", "--tlsverify", "--tlscacert", "/nonexistent/ca.pem",
                    "--tlscert", "/nonexistent/c.pem", "--tlskey", "/nonexistent/k.pem",
                ], "/nonexistent/"
            ),
        ] {
            let started = try ChildProcess.run(
                box.berth, arguments: [box.berth, "engine", "--root", box.root] + arguments,
                environment: ["BERTH_RUN=\(box.run)", standardPath])
            #expect(!started.status.succeeded, "\(arguments) started")
            #expect(started.stderrText.contains(mentions), "\(arguments): \(started.stderrText)")
        }
    }

    /// Under systemd's Type=notify unit the daemon says READY=1 once its socket accepts connections.
    @Test func systemdHearsReadinessOnceTheSocketAccepts() throws {
        try box.stopDaemon()
        let notify = box.base + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in notify.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        let daemon = try ChildProcess.spawn(
            box.berth, arguments: [box.berth, "engine", "--root", box.root, "-H", "unix://" + box.socket],
            environment: ["BERTH_RUN=\(box.run)", standardPath, "NOTIFY_SOCKET=\(notify)"],
            fileDescriptors: [0: devnull.rawValue, 1: devnull.rawValue, 2: devnull.rawValue])
        defer {
            kill(daemon, SIGTERM)
            _ = try? ChildProcess.wait(daemon)
        }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 60_000) == 1, "no readiness within 60 s")
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        let message = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : ""
        #expect(message.hasPrefix("READY=1\n"), "\(message)")
        #expect(message.contains("MAINPID=\(daemon)"))
        // Ready means ready: the socket answers at once.
        #expect(try box.docker(["version", "--format", "{{.Server.Os}}"]).stdoutText.trimmed == "linux")
    }

    // MARK: One store, two doors

    @Test func theCLIAndTheDaemonSeeAndDriveEachOthersContainers() throws {
        let byCLI = try box.berthCLI(["run", "-d", "--name", "by-cli", "--network", "none", box.image, "sleep", "100"])
        #expect(byCLI.status == .exited(0), "\(byCLI.stderrText)")
        let byDocker = try box.docker([
            "run", "-d", "--name", "by-docker", "--network", "none", box.image, "sleep", "100",
        ])
        #expect(byDocker.status == .exited(0), "\(byDocker.stderrText)")

        let listedByDocker = try box.docker(["ps", "--format", "{{.Names}}"]).stdoutText.split(separator: "\n").sorted()
        #expect(listedByDocker == ["by-cli", "by-docker"])
        let listedByCLI = try box.berthCLI(["ps", "--format", "{{.Names}}"]).stdoutText.split(separator: "\n").sorted()
        #expect(listedByCLI == ["by-cli", "by-docker"])

        // A docker wait on the CLI's container ends when the CLI stops it, with the signal's status.
        let waitOutput = box.base + "/wait.out"
        let waiter = try box.spawnDocker(["wait", "by-cli"], output: waitOutput)
        #expect(try box.berthCLI(["stop", "-t", "0", "by-cli"]).status == .exited(0))
        #expect(try ChildProcess.wait(waiter) == .exited(0))
        #expect(try FileSystem.readString(waitOutput).trimmed == "137")

        // Each removes what the other made.
        #expect(try box.docker(["rm", "by-cli"]).status == .exited(0))
        #expect(try box.berthCLI(["rm", "-f", "by-docker"]).status == .exited(0))
        #expect(try box.docker(["ps", "-a", "-q"]).stdoutText.isEmpty)
        #expect(try box.berthCLI(["ps", "-a", "-q"]).stdoutText.isEmpty)
    }

    // MARK: What a user types daily

    /// `docker run -it --rm` on a terminal of its own (util-linux `script` gives the CLI a pty): the
    /// shell reads what is typed, and the CLI exits with the container's status.
    @Test(.enabled(if: FileSystem.exists("/usr/bin/script"), "needs script(1)"))
    func runInteractivelyOnATerminal() throws {
        guard let dockerCLI else { throw TestFailure("no docker CLI") }
        let command = "\(dockerCLI) run -it --rm --network none \(box.image) sh"
        let typed = try ChildProcess.run(
            "/usr/bin/script", arguments: ["script", "-qec", command, "/dev/null"],
            environment: [
                "DOCKER_HOST=unix://\(box.socket)", "DOCKER_CONFIG=\(box.base)/docker-config",
                standardPath, "HOME=\(box.base)", "TERM=xterm",
            ],
            input: Array("echo hello-$((6*7))\nexit 5\n".utf8))
        #expect(typed.status == .exited(5), "\(typed.stdoutText) \(typed.stderrText)")
        #expect(typed.stdoutText.contains("hello-42"), "\(typed.stdoutText)")
        #expect(try box.docker(["ps", "-aq"]).stdoutText.isEmpty)
    }

    /// `docker run -d -p … --name … --restart …`: a web server reached on the published port of the
    /// host's loopback, its policy kept.
    @Test func aDetachedServerIsReachedOnItsPublishedPort() throws {
        let port = LocalRegistry.freePort()
        let started = try box.docker([
            "run", "-d", "-p", "127.0.0.1:\(port):8080", "--name", "web", "--restart", "unless-stopped",
            box.image, "sh", "-c", "echo served > /srv/index.html; exec httpd -f -p 8080 -h /srv",
        ])
        #expect(started.status == .exited(0), "\(started.stderrText)")
        #expect(try box.docker(["port", "web"]).stdoutText.trimmed == "8080/tcp -> 127.0.0.1:\(port)")
        #expect(
            try box.docker(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "web"]).stdoutText.trimmed
                == "unless-stopped")
        guard let curl = ChildProcess.lookup("curl", path: "/usr/bin:/bin") else { throw TestFailure("no curl") }
        var body = ""
        #expect(
            try box.eventually(20) {
                body = try ChildProcess.run(
                    curl, arguments: ["curl", "-s", "http://127.0.0.1:\(port)/index.html"], environment: [standardPath]
                ).stdoutText
                return body == "served\n"
            }, "\(body)")
        // A second container cannot take the port: docker's message, and the first still serves.
        let clash = try box.docker(["run", "-d", "-p", "127.0.0.1:\(port):8080", box.image, "sleep", "10"])
        #expect(clash.status != .exited(0))
        #expect(clash.stderrText.contains("port is already allocated"), "\(clash.stderrText)")
        #expect(try box.docker(["rm", "-f", "web"]).status == .exited(0))
    }

    // MARK: Clients that vanish

    /// Streaming requests (a followed log, events, stats, an attachment, a wait) each hold a thread of
    /// the daemon and descriptors (the client's connection, the monitor's attach socket, a log file, a
    /// wake pipe): a client killed in the middle gives them all back, and the daemon serves on.
    @Test func clientsKilledMidStreamLeaveNoThreadNorDescriptorBehind() throws {
        #expect(
            try box.docker([
                "run", "-d", "--name", "chatty", "--network", "none", box.image,
                "sh", "-c", "while true; do echo tick; sleep 0.2; done",
            ]).status == .exited(0))
        func threads() -> Int { (try? FileSystem.listDirectory("/proc/\(box.daemon)/task").count) ?? -1 }
        func descriptors() -> Int { (try? FileSystem.listDirectory("/proc/\(box.daemon)/fd").count) ?? -1 }
        // Idle: the event loop and whatever pools the daemon keeps, once the run's requests are done.
        var baseline = threads()
        var baselineFDs = descriptors()
        _ = try box.eventually(10) {
            let now = (threads(), descriptors())
            defer { (baseline, baselineFDs) = now }
            return now == (baseline, baselineFDs)
        }
        var clients: [pid_t] = []
        for arguments in [
            ["logs", "-f", "chatty"], ["events"], ["stats", "chatty"], ["attach", "chatty"], ["wait", "chatty"],
        ] {
            clients.append(try box.spawnDocker(arguments, output: box.base + "/client-\(arguments[0]).out"))
        }
        // All five are being served (one thread each, at least) before they are killed.
        #expect(try box.eventually(20) { threads() >= baseline + 5 }, "threads \(threads()), baseline \(baseline)")
        // Each holds its connection at least.
        #expect(descriptors() >= baselineFDs + 5, "descriptors \(descriptors()), baseline \(baselineFDs)")
        for client in clients {
            kill(client, SIGKILL)
            _ = try ChildProcess.wait(client)
        }
        var left = 0
        #expect(
            try box.eventually(20) {
                left = threads()
                return left <= baseline
            }, "\(left) threads, \(baseline) before")
        // Every descriptor is given back: none is kept per client, so no tolerance is needed.
        var open = 0
        #expect(
            try box.eventually(20) {
                open = descriptors()
                return open <= baselineFDs
            }, "\(open) descriptors, \(baselineFDs) before: \(openDescriptors())")
        #expect(try box.docker(["logs", "--tail", "1", "chatty"]).stdoutText == "tick\n")
        #expect(try box.docker(["rm", "-f", "chatty"]).status == .exited(0))
    }

    /// The daemon's open descriptors and what they are, for a failure's message.
    private func openDescriptors() -> [String] {
        let fds = (try? FileSystem.listDirectory("/proc/\(box.daemon)/fd")) ?? []
        return fds.map { fd in
            var target = [CChar](repeating: 0, count: 512)
            let n = readlink("/proc/\(box.daemon)/fd/\(fd)", &target, target.count - 1)
            return n > 0 ? String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : fd
        }.sorted()
    }

    // MARK: Uploads

    /// `docker cp` into a container sends a tar as the body: one larger than any JSON body limit
    /// arrives whole (written to a file as it comes), and nothing of it is left behind.
    @Test func aLargeCopyIntoAContainerArrivesWhole() throws {
        #expect(
            try box.docker(["run", "-d", "--name", "receiver", "--network", "none", box.image, "sleep", "100"]).status
                == .exited(0))
        let source = box.base + "/big.bin"
        var bytes = [UInt8](repeating: 0, count: 40 << 20)
        for i in stride(from: 0, to: bytes.count, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) }
        try FileSystem.writeAtomically(source, bytes)
        let copied = try box.docker(["cp", source, "receiver:/tmp/big.bin"])
        #expect(copied.status == .exited(0), "\(copied.stderrText)")
        let size = try box.docker(["exec", "receiver", "stat", "-c", "%s", "/tmp/big.bin"])
        #expect(size.stdoutText.trimmed == String(40 << 20), "\(size.stderrText)")
        let local = try ChildProcess.run("/usr/bin/md5sum", arguments: ["md5sum", source], environment: [standardPath])
        let remote = try box.docker(["exec", "receiver", "md5sum", "/tmp/big.bin"])
        #expect(remote.stdoutText.split(separator: " ").first == local.stdoutText.split(separator: " ").first)
        let leftovers = (try? FileSystem.listDirectory(box.root + "/tmp")) ?? []
        #expect(leftovers.filter { $0.contains("upload") }.isEmpty, "\(leftovers)")
    }

    // MARK: SIGKILL under load

    /// Containers are their monitors', and the records are written before the API answers: a daemon
    /// killed while clients create and start containers loses none that it reported, nor a log line.
    @Test func aKilledDaemonLosesNoContainerNorLogLine() throws {
        let lines = 2000
        var clients: [(pid: pid_t, output: String)] = []
        for n in 0..<6 {
            let output = box.base + "/run-\(n).out"
            let pid = try box.spawnDocker(
                [
                    "run", "-d", "--network", "none", "--label", "load=1", box.image,
                    "sh", "-c", "seq 1 \(lines); sleep 300",
                ], output: output)
            clients.append((pid, output))
        }
        // Kill once at least two clients are done (the docker CLI prints a detached container's ID
        // after its create, before its start: only a client that exited 0 saw the start succeed).
        var ended: [pid_t: Int32] = [:]
        _ = try box.eventually(30) {
            for client in clients where ended[client.pid] == nil {
                var status: Int32 = 0
                if waitpid(client.pid, &status, WNOHANG) == client.pid { ended[client.pid] = status }
            }
            return ended.count >= 2
        }
        kill(box.daemon, SIGKILL)
        _ = try ChildProcess.wait(box.daemon)
        for client in clients where ended[client.pid] == nil {
            var status: Int32 = 0
            while waitpid(client.pid, &status, 0) < 0 && errno == EINTR {}
            ended[client.pid] = status
        }
        let reported = clients.compactMap { client -> String? in
            let id = ((try? FileSystem.readString(client.output)) ?? "").trimmed
            return ended[client.pid] == 0 && id.count == 64 ? id : nil
        }
        #expect(reported.count >= 2)

        try box.startDaemon()
        for id in reported {
            // Running, and its whole output in the log once the monitor has written it.
            let state = try box.docker([
                "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", id,
            ])
            #expect(state.stdoutText.hasPrefix("running "), "\(id): \(state.stdoutText) \(state.stderrText)")
            var logged = 0
            _ = try box.eventually(20) {
                logged = try box.docker(["logs", id]).stdoutText.split(separator: "\n").count
                return logged == lines
            }
            #expect(logged == lines, "\(id): \(logged) lines")
        }
        // Every container the store has is whole: inspectable, in a state docker knows.
        for id in try box.berthCLI(["ps", "-a", "-q", "--no-trunc"]).stdoutText.split(separator: "\n") {
            let state = try box.docker(["inspect", "--format", "{{.State.Status}}", String(id)])
            #expect(state.status == .exited(0), "\(id): \(state.stderrText)")
            #expect(["created", "running", "exited"].contains(state.stdoutText.trimmed), "\(id): \(state.stdoutText)")
        }
    }
}
