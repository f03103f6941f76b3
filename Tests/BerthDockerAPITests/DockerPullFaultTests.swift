#if canImport(Glibc)
import Glibc
#endif
@testable import BerthImage
import BerthOS
import FoundationEssentials
import Testing

/// Pulls that go wrong after their progress began, against scripts/image-fake-registry.py: the error
/// is the stream's last line under the 200 already sent (as dockerd reports it), the docker CLI prints
/// it and fails, and nothing half-pulled is left. A client that goes mid-pull stops the pull.
@Suite(
    .serialized,
    .enabled(
        if: isRealRoot && dockerCLI != nil && python3 != nil,
        "runs the daemon, the docker CLI and the fake registry: needs real root, docker and python3"))
final class DockerPullFaultTests {
    let box: DaemonBox
    /// An OCI layout of two images: `:base` (the busybox layer the daemon has) and `:extra` (that layer
    /// and one the daemon lacks, so a pull of it downloads a layer blob: where the faults are).
    let layout: String

    init() throws {
        box = try DaemonBox("pullfault")
        layout = box.base + "/layout"
        let staging = box.base + "/staging"
        _ = try DaemonBox.extraLayer(in: staging, content: "extra layer\n")
        try DaemonBox.importImage(
            [box.base + "/layer.tar"], into: staging + "/store", name: "127.0.0.1/test/image:base")
        try DaemonBox.importImage(
            [box.base + "/layer.tar", staging + "/extra.tar"], into: staging + "/store",
            name: "127.0.0.1/test/image:extra")
        let store = staging + "/store"
        let directory = layout
        try runBlocking {
            let service = try ImageService(store: try ContentStore(root: store))
            try service.exportLayout(["127.0.0.1/test/image:base", "127.0.0.1/test/image:extra"], to: directory)
            await service.shutdown()
        }
    }

    deinit { box.tearDown() }

    /// scripts/image-fake-registry.py serving the layout in `mode`, stopped by its pid.
    final class FakeRegistry {
        let port = LocalRegistry.freePort()
        private var pid: pid_t = 0
        var host: String { "127.0.0.1:\(port)" }

        init(layout: String, mode: String, log: String) throws {
            let script =
                FileSystem.parent(of: FileSystem.parent(of: FileSystem.parent(of: #filePath)))
                + "/scripts/image-fake-registry.py"
            let output = try FileDescriptor.open(log, O_WRONLY | O_CREAT | O_APPEND, mode: 0o600)
            let devnull = try FileDescriptor.open("/dev/null", O_RDONLY)
            pid = try ChildProcess.spawn(
                python3!,
                arguments: ["python3", script, "--port", "\(port)", "--layout", layout, "--mode", mode],
                environment: ChildProcess.currentEnvironment,
                fileDescriptors: [0: devnull.rawValue, 1: output.rawValue, 2: output.rawValue])
            try LocalRegistry.awaitAccepting(port, within: 30, what: "image-fake-registry.py")
        }

        func stop() {
            guard pid > 0 else { return }
            kill(pid, SIGKILL)
            _ = try? ChildProcess.wait(pid)
            pid = 0
        }

        deinit { stop() }
    }

    /// `POST /images/create` by hand; the chunked body decoded.
    func rawPull(_ image: String, tag: String) throws -> (status: Int, lines: [String]) {
        let reply = try rawExchange(
            box.socket,
            "POST /v1.47/images/create?fromImage=\(image)&tag=\(tag) HTTP/1.1\r\nHost: docker\r\n"
                + "Connection: close\r\nContent-Length: 0\r\n\r\n")
        #expect(reply.headers["transfer-encoding"] == "chunked" || reply.status != 200, "\(reply.headers)")
        return (reply.status, Self.dechunk(reply.body).split(separator: "\n").map(String.init))
    }

    /// A chunked HTTP body's data (decoded as bytes: "\r\n" is one Character to String).
    static func dechunk(_ body: String) -> String {
        let bytes = Array(body.utf8)
        var data: [UInt8] = []
        var at = 0
        while let newline = bytes[at...].firstIndex(of: 10),
            let size = Int(String(decoding: bytes[at..<newline], as: UTF8.self).trimmed, radix: 16), size > 0,
            newline + 1 + size <= bytes.count
        {
            data += bytes[(newline + 1)..<(newline + 1 + size)]
            at = newline + 1 + size + 2
            guard at <= bytes.count else { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Temporary files of the store (ingest and unpacking): none may outlive a failed pull.
    func leftovers() -> [String] {
        let ingest = (try? FileSystem.listDirectory(box.root + "/ingest")) ?? []
        let snapshots = (try? FileSystem.listDirectory(box.root + "/snapshots")) ?? []
        return (ingest + snapshots).filter { $0.hasPrefix(".tmp-") }
    }

    // MARK: Errors in the stream

    /// A layer blob that fails (500s on every try), arrives corrupt, or is cut short: the manifest was
    /// fine, progress lines went out under a 200, and the error is the stream's last line in docker's
    /// shape. The docker CLI prints it and exits non-zero; no image of that name exists afterwards and
    /// the store keeps no temporary file.
    @Test(arguments: ["fail500", "corrupt", "truncate"])
    func aLayerFailingAfterProgressIsAnErrorInTheStream(mode: String) throws {
        let registry = try FakeRegistry(layout: layout, mode: mode, log: box.base + "/fake-\(mode).log")
        defer { registry.stop() }
        let image = "\(registry.host)/test/\(mode)"

        let (status, lines) = try rawPull(image, tag: "extra")
        #expect(status == 200, "\(lines)")
        #expect(lines.contains { $0.contains(#""status":"Pulling from test/\#(mode)""#) }, "\(lines)")
        #expect(lines.contains { $0.contains(#""status":"Pulling fs layer""#) }, "\(lines)")
        #expect(lines.count >= 3, "\(lines)")
        struct ErrorLine: Decodable {
            struct Detail: Decodable { var message: String }
            var errorDetail: Detail
            var error: String
        }
        let last = try? JSONDecoder().decode(ErrorLine.self, from: Data((lines.last ?? "").utf8))
        #expect(last != nil, "the last line is not docker's error line: \(lines.last ?? "")")
        #expect(last?.error == last?.errorDetail.message)
        #expect(last?.error.contains("test/\(mode):extra") == true, "\(last?.error ?? "")")
        #expect(!lines.dropLast().contains { $0.contains("errorDetail") }, "\(lines)")
        #expect(!lines.contains { $0.contains("Status: Downloaded newer image") }, "\(lines)")

        let pulled = try box.docker(["pull", "\(image):extra"])
        #expect(pulled.status != .exited(0), "\(pulled.stdoutText)")
        #expect(pulled.stdoutText.contains("extra: Pulling from test/\(mode)"), "\(pulled.stdoutText)")
        #expect(pulled.stderrText.contains("test/\(mode):extra"), "\(pulled.stderrText)")

        let inspected = try box.docker(["image", "inspect", "\(image):extra"])
        #expect(inspected.status != .exited(0), "\(inspected.stdoutText)")
        let images = try box.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        #expect(images.stdoutText.split(separator: "\n").map(String.init) == [box.image], "\(images.stdoutText)")
        #expect(leftovers().isEmpty, "\(leftovers())")
    }

    // MARK: A client that vanishes mid-pull

    /// A client that closes its connection while a layer download hangs: the daemon cancels the pull
    /// (the thread serving it and the download's descriptors come back, long before the registry's read
    /// timeout), leaves nothing half-pulled, serves on, and a later pull of the image works.
    @Test func aClientGoneMidPullCancelsThePull() throws {
        func threads() -> Int { (try? FileSystem.listDirectory("/proc/\(box.daemon)/task").count) ?? -1 }
        func descriptors() -> Int { (try? FileSystem.listDirectory("/proc/\(box.daemon)/fd").count) ?? -1 }
        /// The threads serving requests (one each, named so): the pull's, while it runs.
        func requestThreads() -> Int {
            let tasks = (try? FileSystem.listDirectory("/proc/\(box.daemon)/task")) ?? []
            return tasks.filter {
                ((try? FileSystem.readString("/proc/\(box.daemon)/task/\($0)/comm")) ?? "").trimmed == "docker-api"
            }.count
        }
        // A first pull (of layers the daemon has) starts the registry client's event loop and pools, so
        // that the baseline counts them; its registry then goes, and its pooled connections with it.
        let warm = try FakeRegistry(layout: layout, mode: "ok", log: box.base + "/fake-warm.log")
        let warmed = try box.docker(["pull", "\(warm.host)/test/warm:base"])
        #expect(warmed.status == .exited(0), "\(warmed.stderrText)")
        warm.stop()
        var baseline = (threads(), descriptors())
        _ = try box.eventually(10) {
            let now = (threads(), descriptors())
            defer { baseline = now }
            return now == baseline
        }

        let hanging = try FakeRegistry(layout: layout, mode: "hang", log: box.base + "/fake-hang.log")
        defer { hanging.stop() }
        let connection = try UnixSocket.connect(box.socket)
        try connection.send(
            Array(
                ("POST /v1.47/images/create?fromImage=\(hanging.host)/test/hang&tag=extra HTTP/1.1\r\n"
                    + "Host: docker\r\nContent-Length: 0\r\n\r\n").utf8))
        var seen: [UInt8] = []
        while !String(decoding: seen, as: UTF8.self).contains("Pulling fs layer") {
            let chunk = try connection.read(upTo: 4096)
            if chunk.isEmpty { break }
            seen += chunk
        }
        let head = String(decoding: seen, as: UTF8.self)
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        #expect(head.contains("Pulling fs layer"), "\(head)")
        // The layer's download is under way: the daemon holds a thread and descriptors for it.
        #expect(requestThreads() == 1)
        #expect(threads() > baseline.0, "threads \(threads()), baseline \(baseline.0)")
        connection.close()

        // The registry still hangs (its read timeout is 30 s): only the cancellation ends the pull.
        var serving = 0
        #expect(
            try box.eventually(15) {
                serving = requestThreads()
                return serving == 0
            }, "\(serving) request threads left")
        var left = 0
        #expect(
            try box.eventually(15) {
                left = threads()
                return left <= baseline.0
            }, "\(left) threads, \(baseline.0) before")
        #expect(leftovers().isEmpty, "\(leftovers())")
        // The hanging registry's idle pooled connections close with it.
        hanging.stop()
        var open = 0
        #expect(
            try box.eventually(15) {
                open = descriptors()
                return open <= baseline.1
            }, "\(open) descriptors, \(baseline.1) before")

        let inspected = try box.docker(["image", "inspect", "\(hanging.host)/test/hang:extra"])
        #expect(inspected.status != .exited(0))
        #expect(try box.docker(["version", "--format", "{{.Server.Os}}"]).stdoutText.trimmed == "linux")

        let working = try FakeRegistry(layout: layout, mode: "ok", log: box.base + "/fake-ok.log")
        defer { working.stop() }
        let pulled = try box.docker(["pull", "\(working.host)/test/later:extra"])
        #expect(pulled.status == .exited(0), "\(pulled.stderrText)")
        #expect(pulled.stdoutText.contains("Pull complete"), "\(pulled.stdoutText)")
        let ran = try box.docker([
            "run", "--rm", "--network", "none", "\(working.host)/test/later:extra", "cat", "/etc/pulled",
        ])
        #expect(ran.stdoutText == "extra layer\n", "\(ran.stderrText)")
    }
}

/// The image service's shared pulls and layers (what lets one client's departure cancel a pull without
/// failing another client's pull of the same image).
struct SharedPullTaskTests {
    @Test func aSharedTaskIsCancelledOnlyWhenEveryWaiterHasLeft() async throws {
        let shared = SharedTask<Int>(
            Task {
                try await Task.sleep(for: .seconds(600))
                return 1
            })
        let first = try #require(shared.join())
        let second = try #require(shared.join())
        first.leave()
        first.leave()  // twice counts once
        #expect(!shared.task.isCancelled)
        second.leave()
        #expect(shared.task.isCancelled)
        #expect(shared.join() == nil, "a given-up task takes no new waiter")
        await #expect(throws: CancellationError.self) { try await shared.task.value }
    }

    /// A caller's task cancelled while it waits leaves; once the other caller leaves too, the work is
    /// cancelled and the waiting caller sees the work end (it waits for the work to wind down, so that
    /// nothing is still writing when its pull reports the end). Were the cancelled caller not to leave,
    /// the work would run its 30 s and return 1.
    @Test func aCallerWhoseTaskIsCancelledLeaves() async throws {
        let shared = SharedTask<Int>(
            Task {
                try await Task.sleep(for: .seconds(30))
                return 1
            })
        let other = try #require(shared.join())
        let mine = try #require(shared.join())
        let waiting = Task { try await mine.value() }
        waiting.cancel()
        other.leave()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(shared.task.isCancelled)
    }
}
