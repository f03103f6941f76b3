#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// A network namespace pinned by a bind mount on a file (e.g. `/run/berth/netns/<id>`), so it outlives
/// every process in it: the engine creates it before the container, hands its path to CNI and to the
/// OCI runtime (`linux.namespaces[].path`), and removes it after the last DEL.
public enum NetworkNamespace {
    /// Where the engine pins its containers' namespaces (on /run: they mean nothing after a reboot).
    public static let defaultDirectory = "/run/berth/netns"

    /// The pin of a container's namespace in `directory`.
    public static func path(for containerID: String, in directory: String = defaultDirectory) -> String {
        "\(directory)/\(containerID)"
    }

    /// Creates a new network namespace with `lo` up and pins it at `path` (the file is created; its
    /// directory too). Fails with EEXIST if `path` already exists, so two containers never share one
    /// by accident.
    public static func create(at path: String) throws(SystemCallError) {
        let directory = FileSystem.parent(of: path)
        try FileSystem.makeDirectories(directory)
        try makeSharedMountPoint(directory)
        let fd = try sys("open", path) { berth_open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444) }
        Glibc.close(fd)
        var step: Int32 = 0
        let error = berth_netns_create(path, &step)
        if error == 0 { return }
        // The mount may already be in place when a later step failed: undo both.
        _ = umount2(path, Int32(MNT_DETACH))
        unlink(path)
        throw SystemCallError(call: stepName(step), errno: error, subject: path)
    }

    /// Unmounts and deletes a pinned namespace. Idempotent: a path that is gone, or a file that is no
    /// longer a mount point, is not an error. The namespace itself dies with its last user.
    public static func remove(at path: String) throws(SystemCallError) {
        if umount2(path, Int32(MNT_DETACH)) != 0 {
            let code = errno
            // EINVAL: not a mount point (already unmounted); ENOENT: the file is gone.
            if code != EINVAL && code != ENOENT {
                throw SystemCallError(call: "umount2", errno: code, subject: path)
            }
        }
        if unlink(path) != 0 && errno != ENOENT {
            throw SystemCallError(call: "unlink", errno: errno, subject: path)
        }
    }

    /// Whether `path` is a pinned network namespace (nsfs mount), e.g. to find leftovers after a crash.
    public static func isPinned(_ path: String) -> Bool {
        (try? FileSystemMagic.of(path: path)) == nsfsMagic
    }

    static let nsfsMagic = 0x6e736673

    /// `ip netns add` makes its directory a shared mount point (bound onto itself) so that an unmount
    /// of a pin propagates into mount namespaces copied while it existed (a container's, another
    /// engine's); otherwise such a copy keeps the namespace, its veth and its addresses alive.
    static func makeSharedMountPoint(_ directory: String) throws(SystemCallError) {
        if Glibc.mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return }
        guard errno == EINVAL else { throw SystemCallError(call: "mount(MS_SHARED)", errno: errno, subject: directory) }
        // EINVAL: not a mount point yet. Bind it onto itself, then make it shared.
        try Mount.mount(source: directory, target: directory, type: "none", flags: UInt(MS_BIND | MS_REC), data: nil)
        _ = try sys("mount(MS_SHARED)", directory) { Glibc.mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) }
    }

    static func stepName(_ step: Int32) -> String {
        switch Int(step) {
        case Int(BERTH_NETNS_STEP_THREAD): return "pthread_create"
        case Int(BERTH_NETNS_STEP_UNSHARE): return "unshare(CLONE_NEWNET)"
        case Int(BERTH_NETNS_STEP_MOUNT): return "mount(MS_BIND) /proc/thread-self/ns/net"
        case Int(BERTH_NETNS_STEP_SOCKET): return "socket in new netns"
        case Int(BERTH_NETNS_STEP_GET_FLAGS): return "ioctl(SIOCGIFFLAGS) lo"
        default: return "ioctl(SIOCSIFFLAGS) lo"
        }
    }
}
