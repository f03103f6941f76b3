#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// An IPC or UTS namespace pinned by a bind mount on a file, as ``NetworkNamespace`` pins a network one:
/// a CRI pod sandbox's shared namespaces live as long as the pin, with no process to hold them (CRI-O's
/// pinns; containerd keeps a pause process instead). Its containers join them by path.
public enum PinnedNamespace {
    public enum Kind: Sendable {
        case ipc
        /// A UTS namespace with its hostname set once, before anything joins it.
        case uts(hostname: String)

        var flag: Int32 { if case .ipc = self { return BERTH_CLONE_NEWIPC } else { return BERTH_CLONE_NEWUTS } }
        var name: String { if case .ipc = self { return "ipc" } else { return "uts" } }
    }

    /// Creates a new namespace of `kind` and pins it at `path` (created, with its directory; EEXIST if
    /// it exists, so two sandboxes never share one by accident).
    public static func create(_ kind: Kind, at path: String) throws(SystemCallError) {
        let directory = FileSystem.parent(of: path)
        try FileSystem.makeDirectories(directory)
        try NetworkNamespace.makeSharedMountPoint(directory)
        let fd = try sys("open", path) { berth_open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444) }
        Glibc.close(fd)
        var step: Int32 = 0
        var hostname: String?
        if case .uts(let name) = kind { hostname = name }
        let error = withOptionalCString(hostname) { berth_namespace_pin(path, kind.flag, kind.name, $0, &step) }
        if error == 0 { return }
        unlink(path)
        let call =
            switch Int(step) {
            case Int(BERTH_NETNS_STEP_THREAD): "pthread_create"
            case Int(BERTH_NETNS_STEP_UNSHARE): "unshare(CLONE_NEW\(kind.name.uppercased()))"
            case Int(BERTH_NETNS_STEP_HOSTNAME): "sethostname(\(hostname ?? ""))"
            default: "mount(MS_BIND) /proc/thread-self/ns/\(kind.name)"
            }
        throw SystemCallError(call: call, errno: error, subject: path)
    }

    /// Unpins (idempotent, as ``NetworkNamespace/remove(at:)``).
    public static func remove(at path: String) throws(SystemCallError) {
        try NetworkNamespace.remove(at: path)
    }

    private static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }
}
