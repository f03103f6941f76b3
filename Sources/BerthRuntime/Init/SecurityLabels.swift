#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// process.apparmorProfile and process.selinuxLabel: applied on exec through /proc/self/attr where the
/// LSM is active; asking for one on a host without it is an error that says so.
enum SecurityLabels {
    static func apply(apparmor: String?, selinux: String?) throws(RuntimeError) {
        if let profile = apparmor, !profile.isEmpty {
            guard appArmorEnabled else {
                throw .invalidConfig(
                    field: "process.apparmorProfile",
                    reason: "AppArmor is not enabled on this host; cannot apply profile \"\(profile)\"")
            }
            try write(
                "exec \(profile)",
                to: FileSystem.exists("/proc/self/attr/apparmor/exec")
                    ? "/proc/self/attr/apparmor/exec" : "/proc/self/attr/exec")
        }
        if let label = selinux, !label.isEmpty {
            guard FileSystem.exists("/sys/fs/selinux/enforce") else {
                throw .invalidConfig(
                    field: "process.selinuxLabel",
                    reason: "SELinux is not enabled on this host; cannot apply label \"\(label)\"")
            }
            try write(label, to: "/proc/self/attr/exec")
        }
    }

    static var appArmorEnabled: Bool {
        ((try? FileSystem.readString("/sys/module/apparmor/parameters/enabled")) ?? "").hasPrefix("Y")
    }

    private static func write(_ value: String, to path: String) throws(RuntimeError) {
        try RuntimeError.wrap("writing \(path)") { () throws(SystemCallError) in
            let fd = try FileSystemMagic.openProc(path, O_WRONLY)
            try fd.write(value)
        }
    }
}
