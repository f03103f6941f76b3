#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// The devices a container may use: docker's device cgroup rules (moby `oci/defaults.go`), host devices
/// named with `--device`, or every host device with `--privileged` (containerd's HostDevices).
///
/// The runtime adds the devices every container has (null, zero, full, random, urandom, tty, console,
/// ptmx and /dev/pts) and their allow rules itself, as runc does; docker lists only these.
enum ContainerDevices {
    static let defaultRules: [Spec.DeviceRule] = [
        Spec.DeviceRule(allow: false, access: "rwm"),
        Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),  // /dev/zero
        Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),  // /dev/null
        Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),  // /dev/urandom
        Spec.DeviceRule(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),  // /dev/random
        Spec.DeviceRule(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),  // /dev/tty
        Spec.DeviceRule(allow: true, type: "c", major: 5, minor: 1, access: "rwm"),  // /dev/console
        Spec.DeviceRule(allow: false, type: "c", major: 10, minor: 229, access: "rwm"),  // /dev/fuse: not by default
    ]

    static func build(_ request: ContainerConfiguration) throws(EngineError) -> (
        devices: [Spec.Device], rules: [Spec.DeviceRule]
    ) {
        if request.privileged {
            var devices = hostDevices()
            for mapping in request.devices where mapping.pathOnHost != mapping.pathInContainer {
                devices += try fromPath(mapping.pathOnHost, in: mapping.pathInContainer)
            }
            return (devices, [Spec.DeviceRule(allow: true, access: "rwm")])
        }
        var devices: [Spec.Device] = []
        var rules = defaultRules
        for mapping in request.devices {
            guard RunOptionParser.isDeviceMode(mapping.cgroupPermissions) else {
                throw .invalidArgument(what: "--device", reason: "bad mode specified: \(mapping.cgroupPermissions)")
            }
            let found = try fromPath(mapping.pathOnHost, in: mapping.pathInContainer)
            devices += found
            rules += found.map {
                Spec.DeviceRule(
                    allow: true, type: $0.type, major: $0.major, minor: $0.minor,
                    access: mapping.cgroupPermissions)
            }
        }
        return (devices, rules)
    }

    /// The device at `pathOnHost` (a symlink is followed), or every device under it when it is a
    /// directory, as moby's DevicesFromPath.
    static func fromPath(_ pathOnHost: String, in pathInContainer: String) throws(EngineError) -> [Spec.Device] {
        guard pathInContainer.hasPrefix("/") else {
            throw .invalidArgument(what: "--device", reason: "\(pathInContainer) is not an absolute path")
        }
        let resolved = (try? FileSystem.realPath(pathOnHost)) ?? pathOnHost
        var info = stat()
        guard lstat(resolved, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            throw .invalidArgument(
                what: "--device",
                reason: "error gathering device information while adding custom device \"\(pathOnHost)\": \(reason)")
        }
        if let device = device(info, path: pathInContainer) { return [device] }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            let found = walk(resolved).map { entry in
                var device = entry.device
                device.path = FileSystem.clean(pathInContainer + "/" + entry.relative)
                return device
            }
            if !found.isEmpty { return found }
        }
        throw .invalidArgument(
            what: "--device",
            reason: "error gathering device information while adding custom device \"\(pathOnHost)\": not a device node"
        )
    }

    /// Every device under /dev for `--privileged`, without /dev/pts, shm, mqueue, fd and console (the
    /// container gets its own) and without FIFOs.
    static func hostDevices() -> [Spec.Device] {
        walk("/dev", skipping: ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"], skipFiles: ["console"])
            .filter { $0.device.type != "p" }
            .map { entry in
                var device = entry.device
                device.path = "/dev/" + entry.relative
                return device
            }
    }

    /// Devices under `directory` (not following symlinks), with their paths relative to it.
    static func walk(
        _ directory: String, skipping directories: Set<String> = [], skipFiles: Set<String> = [],
        depth: Int = 0
    ) -> [(relative: String, device: Spec.Device)] {
        guard depth < 16, let names = try? FileSystem.listDirectory(directory) else { return [] }
        var result: [(relative: String, device: Spec.Device)] = []
        for name in names.sorted() {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                if directories.contains(name) { continue }
                result += walk(path, depth: depth + 1).map { (relative: name + "/" + $0.relative, device: $0.device) }
            } else if !skipFiles.contains(name), let device = device(info, path: path) {
                result.append((name, device))
            }
        }
        return result
    }

    /// The OCI device for a stat result; nil when it is not a device node.
    static func device(_ info: stat, path: String) -> Spec.Device? {
        let type: String
        switch info.st_mode & S_IFMT {
        case S_IFCHR: type = "c"
        case S_IFBLK: type = "b"
        case S_IFIFO: type = "p"
        default: return nil
        }
        let number = UInt64(info.st_rdev)
        // glibc's gnu_dev_major/minor, which Swift does not import (they are macros).
        let major = ((number >> 8) & 0xfff) | ((number >> 32) & ~UInt64(0xfff))
        let minor = (number & 0xff) | ((number >> 12) & ~UInt64(0xff))
        return Spec.Device(
            type: type, path: path, major: Int64(major), minor: Int64(minor),
            fileMode: UInt32(info.st_mode & ~S_IFMT), uid: info.st_uid, gid: info.st_gid)
    }
}
