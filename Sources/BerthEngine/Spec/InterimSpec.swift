import BerthOCI

// Placeholder until the full builder (docker's defaults, users, devices, seccomp) lands.
public enum SpecBuilder {
    public static func build(_ inputs: SpecInputs) throws(EngineError) -> Spec {
        var spec = DefaultSpec.make()
        spec.ociVersion = "1.0.2"
        let c = inputs.configuration
        var process = spec.process!
        process.args = try command(c, image: inputs.image)
        var env = inputs.image?.Env ?? []
        for e in c.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(e)
        }
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0) }
        env.append("HOSTNAME=\(inputs.hostname)")
        process.env = env
        process.cwd = c.workingDir ?? inputs.image?.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        process.terminal = c.tty
        if let user = c.user ?? inputs.image?.User, !user.isEmpty { process.user = try resolveUser(user, rootfs: inputs.rootfs) }
        process.noNewPrivileges = false
        let caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
                    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
        process.capabilities = Spec.Capabilities(bounding: caps, effective: caps, permitted: caps)
        process.rlimits = nil
        spec.process = process
        spec.hostname = inputs.hostname
        for (destination, source) in inputs.managedFiles.sorted(by: { $0.key < $1.key }) {
            spec.mounts?.append(Spec.Mount(destination: destination, type: "bind", source: source, options: ["rbind", "rprivate"]))
        }
        for (index, mount) in c.mounts.enumerated() {
            let source = index < inputs.volumeSources.count ? inputs.volumeSources[index] ?? mount.source : mount.source
            spec.mounts?.append(Spec.Mount(destination: mount.target, type: "bind", source: source,
                                           options: ["rbind", "rprivate"] + (mount.readOnly ? ["ro"] : [])))
        }
        var namespaces = ["pid", "ipc", "uts", "mount"].map { Spec.Namespace(type: $0) }
        if !inputs.sharesHostNetwork { namespaces.append(Spec.Namespace(type: "network", path: inputs.networkNamespacePath)) }
        spec.linux?.namespaces = namespaces
        spec.linux?.cgroupsPath = inputs.cgroupsPath
        return spec
    }
}
