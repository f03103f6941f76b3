#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// A container whose config.json has no mount namespace lives in the runtime's own, as under runc
/// ("a namespace not listed is inherited"): its init binds the rootfs onto itself there, mounts the
/// config's mounts under it, and chroots into it (pivot_root would move the root of every process of
/// the host). Its mounts are therefore the host's: `delete` takes the rootfs mount away with everything
/// under it (runc leaves them behind).
///
/// The runtime tells the init's mount from one that was there before (an overlay the caller mounted at
/// the rootfs, say) by mount id: the id found at the rootfs before the spawn, and after `created`.
struct HostMountNamespace {
    let rootfs: String
    /// The runtime's mount namespace: the spawned child seals the runtime binary in a private one and
    /// comes back to this one (a mount join, as for any joined namespace).
    let namespace: FileDescriptor
    private let mountBefore: UInt64

    init(rootfs: String) throws(RuntimeError) {
        self.rootfs = rootfs
        namespace = try RuntimeError.wrap("opening the runtime's mount namespace") { () throws(SystemCallError) in
            try FileDescriptor.open("/proc/self/ns/mnt", O_RDONLY)
        }
        // 0 when the rootfs is missing (validation says so next) or the kernel predates mount ids (5.8);
        // then no mount is ever taken for the init's, and none is removed.
        mountBefore = berth_mount_id(rootfs)
    }

    /// The mount now at the rootfs, if the init made it.
    func madeByInit() -> UInt64? {
        let now = berth_mount_id(rootfs)
        return mountBefore != 0 && now != 0 && now != mountBefore ? now : nil
    }

    /// Detaches the init's rootfs mount and every mount under it, if it is still the one at `rootfs`.
    static func remove(_ mount: UInt64, at rootfs: String) {
        guard berth_mount_id(rootfs) == mount else { return }
        if umount2(rootfs, Int32(MNT_DETACH)) != 0 {
            RuntimeLog.warning("\(SystemCallError(call: "umount2(MNT_DETACH)", errno: errno, subject: rootfs))")
        }
    }
}

extension NamespacePlan {
    /// No mount namespace created or joined: the container's mounts are made in the runtime's.
    var usesRuntimeMountNamespace: Bool { !creates(.mount) && !joins(.mount) }
}
