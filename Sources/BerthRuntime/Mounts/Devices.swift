#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// /dev inside the container: the default devices every container gets, `linux.devices`, and the
/// standard symlinks. Device nodes are made with mknodat under a /dev descriptor resolved inside the
/// rootfs; in a user namespace, where mknod is not allowed, the host node is bind-mounted instead.
struct Devices {
    let spec: Spec
    let root: Root

    struct Node: Equatable {
        var path: String
        var type: String
        var major: Int64
        var minor: Int64
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
    }

    static let defaults: [Node] = [
        Node(path: "/dev/null", type: "c", major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0),
        Node(path: "/dev/zero", type: "c", major: 1, minor: 5, mode: 0o666, uid: 0, gid: 0),
        Node(path: "/dev/full", type: "c", major: 1, minor: 7, mode: 0o666, uid: 0, gid: 0),
        Node(path: "/dev/random", type: "c", major: 1, minor: 8, mode: 0o666, uid: 0, gid: 0),
        Node(path: "/dev/urandom", type: "c", major: 1, minor: 9, mode: 0o666, uid: 0, gid: 0),
        Node(path: "/dev/tty", type: "c", major: 5, minor: 0, mode: 0o666, uid: 0, gid: 0),
    ]

    /// The nodes to create: the defaults, overridden by and extended with linux.devices.
    static func plan(_ spec: Spec) -> [Node] {
        var nodes = defaults
        for device in spec.linux?.devices ?? [] {
            let node = Node(
                path: device.path, type: device.type, major: device.major ?? 0, minor: device.minor ?? 0,
                mode: device.fileMode ?? 0o666, uid: device.uid ?? 0, gid: device.gid ?? 0)
            if let index = nodes.firstIndex(where: { $0.path == device.path }) {
                nodes[index] = node
            } else {
                nodes.append(node)
            }
        }
        return nodes
    }

    var inUserNamespace: Bool {
        (spec.linux?.namespaces ?? []).contains { $0.type == "user" }
    }

    func create() throws(RuntimeError) {
        for node in Self.plan(spec) {
            try make(node)
        }
        try RuntimeError.wrap("creating /dev links") { () throws(SystemCallError) in
            let dev = try root.makeDirectories("/dev")
            var links: [(String, String)] = [
                ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
            ]
            if FileSystem.exists("/proc/kcore") { links.append(("core", "/proc/kcore")) }
            if hasDevpts { links.append(("ptmx", "pts/ptmx")) }
            for (name, target) in links {
                if symlinkat(target, dev.rawValue, name) != 0 && errno != EEXIST {
                    throw SystemCallError(call: "symlinkat", errno: errno, subject: "/dev/\(name)")
                }
            }
        }
    }

    var hasDevpts: Bool {
        (spec.mounts ?? []).contains { $0.destination == "/dev/pts" && $0.type == "devpts" }
    }

    func make(_ node: Node) throws(RuntimeError) {
        try RuntimeError.wrap("creating device \(node.path)") { () throws(SystemCallError) in
            let parent = try root.makeDirectories(FileSystem.parent(of: node.path))
            let name = String(node.path.split(separator: "/").last ?? "")
            // Replace whatever the image put there (a symlink must never be followed).
            if unlinkat(parent.rawValue, name, 0) != 0 && errno != ENOENT {
                throw SystemCallError(call: "unlinkat", errno: errno, subject: node.path)
            }
            if inUserNamespace {
                let target = try parent.openat(name, O_RDONLY | O_CREAT | O_NOFOLLOW, mode: 0o644)
                try Mount.mount(source: node.path, target: target.procPath, type: nil, flags: UInt(MS_BIND), data: nil)
                return
            }
            let kind: mode_t
            switch node.type {
            case "b": kind = S_IFBLK
            case "p": kind = S_IFIFO
            default: kind = S_IFCHR
            }
            let device = dev_t(berth_makedev(UInt32(node.major), UInt32(node.minor)))
            _ = try sys("mknodat", node.path) {
                mknodat(parent.rawValue, name, kind | mode_t(node.mode & 0o7777), device)
            }
            _ = try sys("fchownat", node.path) {
                fchownat(parent.rawValue, name, node.uid, node.gid, AT_SYMLINK_NOFOLLOW)
            }
            // mknod applies the umask; the config's mode is what it should be.
            let fd = try parent.openat(name, BERTH_O_PATH | O_NOFOLLOW)
            _ = try sys("chmod", node.path) { chmod(fd.procPath, mode_t(node.mode & 0o7777)) }
        }
    }

    /// The container's /dev/null must be the real null device before anything is bind-mounted from it.
    static func checkNull() throws(RuntimeError) {
        var info = stat()
        guard lstat("/dev/null", &info) == 0, (info.st_mode & S_IFMT) == S_IFCHR,
            berth_major(UInt64(info.st_rdev)) == 1, berth_minor(UInt64(info.st_rdev)) == 3
        else {
            throw .other("/dev/null in the container is not the null device")
        }
    }
}
