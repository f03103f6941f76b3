#if canImport(Glibc)
import Glibc
#endif
import BerthOS

// What the suites that run real containers share: whether they may, where the built executables are,
// and a failure that says why. A library (not a test target) so that every test target can link it.

/// Real root: uid 0 in the initial user namespace. Suites that run containers are gated on it.
public let isRealRoot: Bool = {
    guard getuid() == 0, let map = try? FileSystem.readString("/proc/self/uid_map") else { return false }
    let fields = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
    return fields.count >= 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295"
}()

/// An executable built beside the test bundle (berth, berth-monitor, berth-runtime), else the bare name.
public func builtExecutable(_ name: String) -> String {
    var directory = FileSystem.parent(of: (try? FileSystem.realPath("/proc/self/exe")) ?? "")
    while !directory.isEmpty && directory != "/" {
        let candidate = directory + "/" + name
        if FileSystem.exists(candidate) && !FileSystem.isDirectory(candidate) { return candidate }
        directory = FileSystem.parent(of: directory)
    }
    return name
}

/// A test's own failure, with what went wrong in words.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A layer tar of this machine's busybox with every applet linked (as the busybox image has them), /tmp
/// world-writable, and `files` (path inside the image → contents) written: the image the container
/// suites build for themselves, since no registry outside this machine is reachable. Returns the tar's
/// path (`<base>/layer.tar`; the tree is `<base>/image`).
public func busyboxLayer(in base: String, files: [String: String]) throws -> String {
    let tree = base + "/image"
    for directory in ["bin", "etc", "tmp"] { try FileSystem.makeDirectories("\(tree)/\(directory)", mode: 0o755) }
    chmod(tree + "/tmp", 0o1777)
    _ = try ChildProcess.run("/bin/cp", arguments: ["cp", "/bin/busybox", tree + "/bin/busybox"], environment: [])
    let applets = try ChildProcess.run("/bin/busybox", arguments: ["busybox", "--list"], environment: [])
    for applet in applets.stdoutText.split(separator: "\n") where applet != "busybox" {
        symlink("busybox", "\(tree)/bin/\(applet)")
    }
    for (path, contents) in files {
        try FileSystem.makeDirectories(FileSystem.parent(of: tree + path), mode: 0o755)
        try FileSystem.writeAtomically(tree + path, Array(contents.utf8))
    }
    let tar = base + "/layer.tar"
    let packed = try ChildProcess.run(
        "/bin/tar", arguments: ["tar", "--numeric-owner", "-C", tree, "-cf", tar, "."], environment: [])
    guard packed.status.succeeded else { throw TestFailure("tar: \(packed.stderrText)") }
    return tar
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick for a socket bound to port 0,
/// released again): for servers a test starts on a port of its own.
public func freeLocalPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// Reads a child's output until it contains `word` (a daemon's readiness line, such as `ready ` or
/// `ready cri`); throws, naming `what` and adding `detail()` (its log), when the child closes its output
/// first or `seconds` pass.
/// Returns what it read.
@discardableResult
public func awaitOutput(
    _ output: FileDescriptor, containing word: String, seconds: Double, what: String, detail: () -> String = { "" }
) throws -> String {
    var seen = ""
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    let deadline = Double(now.tv_sec) + seconds
    while !seen.contains(word) {
        clock_gettime(CLOCK_MONOTONIC, &now)
        guard Double(now.tv_sec) < deadline else { throw TestFailure("\(what) did not start: \(seen)") }
        var entry = pollfd(fd: output.rawValue, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 1000) > 0 else { continue }
        let bytes = try output.read(upTo: 4096)
        if bytes.isEmpty { throw TestFailure("\(what) exited: \(detail())") }
        seen += String(decoding: bytes, as: UTF8.self)
    }
    return seen
}
