#if canImport(Glibc)
import Glibc
#endif
import BerthImage
import BerthOS
// The suite helpers every file of this target uses (isRealRoot, builtExecutable, TestFailure).
@_exported import BerthTestSupport
import FoundationEssentials
import Testing

/// A private engine for one suite: its own data root and run directory, the `berth` CLI driven as a
/// user drives it, and an image built from this machine's busybox with a config that tests can see.
final class EngineBox: @unchecked Sendable {
    let root: String
    let run: String
    let berth = builtExecutable("berth")
    /// busybox with /etc/passwd and /etc/group naming a user `app` (1000) in groups `app` and `extra`;
    /// config: Cmd sh, Env FROM_IMAGE=yes, WorkingDir /srv, StopSignal SIGUSR1 for the stop test.
    let image = "test/engine:1"

    init(_ name: String) throws {
        var template = Array("/tmp/berth-engine-\(name)-XXXXXX".utf8CString)
        let base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        root = base + "/root"
        // Short: socket paths under it must fit in 108 bytes.
        run = base + "/run"
        try FileSystem.makeDirectories(root, mode: 0o700)
        try FileSystem.makeDirectories(run, mode: 0o700)
        try buildImage(base)
    }

    private func buildImage(_ base: String) throws {
        let tree = base + "/image"
        for dir in ["bin", "etc", "srv", "tmp", "home/app"] {
            try FileSystem.makeDirectories("\(tree)/\(dir)", mode: 0o755)
        }
        chmod(tree + "/tmp", 0o1777)
        _ = try ChildProcess.run("/bin/cp", arguments: ["cp", "/bin/busybox", tree + "/bin/busybox"], environment: [])
        // Every applet as a link, as the busybox image has them.
        let applets = try ChildProcess.run("/bin/busybox", arguments: ["busybox", "--list"], environment: [])
        for applet in applets.stdoutText.split(separator: "\n") where applet != "busybox" {
            symlink("busybox", "\(tree)/bin/\(applet)")
        }
        try FileSystem.writeAtomically(
            tree + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n".utf8))
        try FileSystem.writeAtomically(tree + "/etc/group", Array("root:x:0:\napp:x:1000:\nextra:x:2000:app\n".utf8))
        let tar = base + "/layer.tar"
        let packed = try ChildProcess.run(
            "/bin/tar", arguments: ["tar", "--numeric-owner", "-C", tree, "-cf", tar, "."], environment: [])
        guard packed.status.succeeded else { throw TestFailure("tar: \(packed.stderrText)") }
        var config = ImageConfig.ContainerConfig()
        config.Cmd = ["sh"]
        config.Env = ["PATH=/bin", "FROM_IMAGE=yes"]
        config.WorkingDir = "/srv"
        config.Labels = ["from": "image"]
        let store = try ContentStore(root: root)
        let service = try ImageService(store: store)
        let name = image
        let imageConfig = config
        try runBlocking { _ = try await service.importLayers([tar], name: name, config: imageConfig) }
        try runBlocking { await service.shutdown() }
    }

    /// Runs `berth ARGS…` with this box's root and run directory.
    @discardableResult
    func berth(_ arguments: [String], input: String = "") throws -> ChildProcess.Output {
        try berth(arguments, bytes: Array(input.utf8))
    }

    /// ``berth(_:input:)`` with binary standard input (a tar stream).
    func berth(_ arguments: [String], bytes: [UInt8]) throws -> ChildProcess.Output {
        try ChildProcess.run(
            berth, arguments: [berth] + arguments.prefix(1) + ["--root", root] + arguments.dropFirst(),
            environment: ["BERTH_RUN=\(run)", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            input: bytes)
    }

    /// Like ``berth(_:input:)`` for verbs under a noun (`container cleanup`), where --root follows both words.
    func berthNoun(_ noun: String, _ arguments: [String]) throws -> ChildProcess.Output {
        try ChildProcess.run(
            berth, arguments: [berth, noun] + arguments.prefix(1) + ["--root", root] + arguments.dropFirst(),
            environment: ["BERTH_RUN=\(run)", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// `berth inspect --format TEMPLATE NAME`, trimmed.
    func inspect(_ name: String, _ template: String) throws -> String {
        try berth(["inspect", "--format", template, name]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` pass (for states with no event to await).
    func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Removes every container, then the data (unmounting snapshots first).
    func tearDown() {
        if let ids = try? berth(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? berth(["rm", "-f"] + ids)
        }
        // The namespace pin directory is a (shared) mount point of its own, as `ip netns` makes it.
        umount2(run + "/netns", Int32(MNT_DETACH))
        _ = try? ChildProcess.run("/bin/rm", arguments: ["rm", "-rf", FileSystem.parent(of: root)], environment: [])
    }
}

/// Runs async work from a synchronous initializer.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    let semaphore = DispatchSemaphoreLite()
    nonisolated(unsafe) var failure: (any Error)?
    Task {
        do { try await body() } catch { failure = error }
        semaphore.signal()
    }
    semaphore.wait()
    if let failure { throw failure }
}

/// A one-shot semaphore on a pthread condition (FoundationEssentials has no DispatchSemaphore).
final class DispatchSemaphoreLite: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var signalled = false
    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }
    func signal() {
        pthread_mutex_lock(&mutex)
        signalled = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }
    func wait() {
        pthread_mutex_lock(&mutex)
        while !signalled { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }
}

extension String {
    func trimmingCharacters(in _: CharacterSetLite) -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

enum CharacterSetLite { case whitespacesAndNewlines }
