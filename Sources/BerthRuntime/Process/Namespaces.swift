#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Namespace types as config.json names them, with their clone flag and /proc/<pid>/ns entry.
public enum NamespaceKind: String, CaseIterable, Sendable {
    // The order is the order of joining: a user namespace first, so the others can be entered with the
    // privileges it grants; mount last among the rest (after it, host paths are gone).
    case user, pid, network, ipc, uts, cgroup, time, mount

    public var cloneFlag: Int32 {
        switch self {
        case .user: return BERTH_CLONE_NEWUSER
        case .pid: return BERTH_CLONE_NEWPID
        case .network: return BERTH_CLONE_NEWNET
        case .ipc: return BERTH_CLONE_NEWIPC
        case .uts: return BERTH_CLONE_NEWUTS
        case .cgroup: return BERTH_CLONE_NEWCGROUP
        case .time: return BERTH_CLONE_NEWTIME
        case .mount: return BERTH_CLONE_NEWNS
        }
    }

    /// The entry under /proc/<pid>/ns/.
    public var procName: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }
}

/// What a container's namespaces mean for spawning its first process.
public struct NamespacePlan: Sendable, Equatable {
    /// Namespaces to create (clone flags).
    public var create: [NamespaceKind] = []
    /// Namespaces to join, by path, in join order.
    public var join: [(kind: NamespaceKind, path: String)] = []

    public init(_ namespaces: [Spec.Namespace]) {
        for kind in NamespaceKind.allCases {
            guard let entry = namespaces.first(where: { $0.type == kind.rawValue }) else { continue }
            if let path = entry.path, !path.isEmpty {
                join.append((kind, path))
            } else {
                create.append(kind)
            }
        }
    }

    public func creates(_ kind: NamespaceKind) -> Bool { create.contains(kind) }
    public func joins(_ kind: NamespaceKind) -> Bool { join.contains { $0.kind == kind } }

    public static func == (lhs: NamespacePlan, rhs: NamespacePlan) -> Bool {
        lhs.create == rhs.create && lhs.join.map(\.kind) == rhs.join.map(\.kind)
            && lhs.join.map(\.path) == rhs.join.map(\.path)
    }
}

/// Only children enter a pid namespace: the runtime joins the one config.json names (setns) for the
/// init to be born inside, and goes back to its own as soon as the init exists — a process whose
/// children's pid namespace is not its own cannot start a thread (clone fails with EINVAL), and the
/// runtime moves the init into its v1 cgroups on one.
enum PidNamespaceJoin {
    static func spawning<T>(into namespace: FileDescriptor?, _ spawn: () throws(RuntimeError) -> T) throws(RuntimeError)
        -> T
    {
        guard let namespace else { return try spawn() }
        let own = try RuntimeError.wrap("opening the runtime's pid namespace") { () throws(SystemCallError) in
            try FileDescriptor.open("/proc/self/ns/pid", O_RDONLY)
        }
        _ = try RuntimeError.wrap("joining pid namespace") { () throws(SystemCallError) in
            try sys("setns(CLONE_NEWPID)") { berth_setns(namespace.rawValue, BERTH_CLONE_NEWPID) }
        }
        let spawned = Result { () throws(RuntimeError) in try spawn() }
        // Back to our own (always allowed: it is the pid namespace the runtime lives in).
        _ = try RuntimeError.wrap("returning to the runtime's pid namespace") { () throws(SystemCallError) in
            try sys("setns(CLONE_NEWPID)") { berth_setns(own.rawValue, BERTH_CLONE_NEWPID) }
        }
        return try spawned.get()
    }
}
