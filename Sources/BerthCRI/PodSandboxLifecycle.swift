#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthEngine
import BerthJSON
import BerthNetwork
import BerthOS
import GRPCCore

/// RunPodSandbox, StopPodSandbox, RemovePodSandbox: a pod's shared namespaces pinned on files (network
/// attached through the engine's networks, IPC, UTS with the pod's hostname), its /dev/shm, resolv.conf,
/// hostname and hosts files; a pause process only when the pod shares one PID namespace.
extension CRIRuntime {
    func runPodSandbox(_ config: Runtime_V1_PodSandboxConfig, handler: String) throws(RPCError) -> String {
        let metadata = config.metadata
        guard config.hasMetadata, !metadata.name.isEmpty, !metadata.uid.isEmpty, !metadata.namespace.isEmpty else {
            throw CRIError.invalid("sandbox config must include metadata with a name, uid and namespace")
        }
        let options = config.linux.securityContext.namespaceOptions
        guard options.network != .target, options.ipc != .target, options.pid != .target else {
            throw CRIError.invalid("a sandbox's namespaces cannot target a container")
        }
        if let handlerError = runtimeHandlerError(handler) { throw handlerError }
        // A pod on the host's network is on its UTS namespace too, as the kubelet and containerd have it.
        var hostNamespaces: [String] = []
        if options.network == .node { hostNamespaces += ["network", "uts"] }
        if options.ipc == .node { hostNamespaces.append("ipc") }
        if options.pid == .node { hostNamespaces.append("pid") }
        let hostNetwork = options.network == .node
        let hostname =
            hostNetwork ? Self.hostHostname() : (config.hostname.isEmpty ? metadata.name : config.hostname)
        let id = ContainerNames.randomID()
        var record = PodSandboxRecord(
            id: id, name: "\(metadata.name)_\(metadata.namespace)_\(metadata.uid)_\(metadata.attempt)",
            createdAt: Nanoseconds.now(), state: .notReady, namespacePaths: [:], hostNamespaces: hostNamespaces,
            hostname: hostname, cgroupParent: config.linux.cgroupParent, logDirectory: config.logDirectory,
            runtimeHandler: handler, sysctls: config.linux.sysctls)
        var entry = PodSandboxStore.Entry(record: record, config: config)
        if let holder = sandboxes.reserve(entry) {
            throw RPCError(
                code: .alreadyExists,
                message: "the sandbox name \(record.name) is reserved for \(holder)")
        }
        do throws(RPCError) {
            try makeSandbox(&record, config: config)
            record.state = .ready
            entry.record = record
            do { try sandboxes.save(entry) } catch { throw CRIError.from(error, "saving sandbox \(id)") }
            return id
        } catch {
            releaseSandbox(&record, removing: true)
            sandboxes.forget(id)
            throw error
        }
    }

    /// Everything a ready sandbox has; on a throw, what was made is in `record` for ``releaseSandbox``.
    private func makeSandbox(_ record: inout PodSandboxRecord, config: Runtime_V1_PodSandboxConfig) throws(RPCError) {
        let id = record.id
        let directory = sandboxes.directory(id)
        let hostNetwork = record.hostNamespaces.contains("network")
        do {
            try FileSystem.makeDirectories(directory, mode: 0o711)
            try FileSystem.writeAtomically(
                directory + "/hostname", Array((record.hostname + "\n").utf8), durable: false)
            try FileSystem.writeAtomically(
                directory + "/resolv.conf", Array(Self.resolvConf(config, hostNetwork: hostNetwork).utf8),
                durable: false)
        } catch { throw CRIError.from(error, "writing the files of sandbox \(id)") }
        record.files = ["/etc/hostname": directory + "/hostname", "/etc/resolv.conf": directory + "/resolv.conf"]

        if !record.hostNamespaces.contains("ipc") {
            let path = pinPath("ipc", id)
            do { try PinnedNamespace.create(.ipc, at: path) } catch {
                throw CRIError.from(error, "pinning the IPC namespace of sandbox \(id)")
            }
            record.namespacePaths["ipc"] = path
            // POSIX shared memory is files on /dev/shm: one tmpfs for the pod, as its IPC namespace is one.
            let shm = "\(settings.runRoot)/shm/\(id)"
            do {
                try FileSystem.makeDirectories(shm, mode: 0o755)
                try Mount.mount(
                    source: "shm", target: shm, type: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC),
                    data: "mode=1777,size=65536k")
            } catch { throw CRIError.from(error, "mounting /dev/shm of sandbox \(id)") }
            record.files["/dev/shm"] = shm
        }
        if !record.hostNamespaces.contains("uts") {
            let path = pinPath("uts", id)
            do { try PinnedNamespace.create(.uts(hostname: record.hostname), at: path) } catch {
                throw CRIError.from(error, "pinning the UTS namespace of sandbox \(id)")
            }
            record.namespacePaths["uts"] = path
        }
        if config.linux.securityContext.namespaceOptions.pid == .pod {
            do {
                let pause = try PodPIDInit.start(monitorPath: engine.monitorExecutable, pinAt: pinPath("pid", id))
                record.pausePID = pause
            } catch { throw CRIError.from(error, "starting the PID namespace of sandbox \(id)") }
            record.namespacePaths["pid"] = pinPath("pid", id)
        }
        if !hostNetwork {
            let path = pinPath("net", id)
            do { try NetworkNamespace.create(at: path) } catch {
                throw CRIError.from(error, "pinning the network namespace of sandbox \(id)")
            }
            record.namespacePaths["network"] = path
            let ports = config.portMappings.filter { $0.hostPort > 0 }.map { mapping in
                PortMapping(
                    hostIP: mapping.hostIp, hostPort: UInt16(clamping: mapping.hostPort),
                    containerPort: UInt16(clamping: mapping.containerPort),
                    proto: ["tcp", "udp", "sctp"][min(2, max(0, mapping.protocol.rawValue))])
            }
            do {
                let attachments = try engine.networks.attach(
                    containerID: id, netnsPath: path, networks: [podNetworkName], ports: ports)
                record.network = podNetworkName
                record.ip = attachments.first?.ipAddress
                record.ports = attachments.first?.ports ?? []
            } catch {
                throw RPCError(
                    code: .unknown,
                    message: "failed to set up network for sandbox \(id) on network \(podNetworkName): \(error)")
            }
        }
        // The hosts file: the host's own on its network, else the pod's name on its address.
        var hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if hostNetwork {
            hosts = (try? FileSystem.readString("/etc/hosts")) ?? hosts
        } else if let ip = record.ip {
            hosts += "\(ip)\t\(record.hostname)\n"
        }
        do { try FileSystem.writeAtomically(directory + "/hosts", Array(hosts.utf8), durable: false) } catch {
            throw CRIError.from(error, "writing the hosts file of sandbox \(id)")
        }
        record.files["/etc/hosts"] = directory + "/hosts"
    }

    /// Stops a sandbox: its containers killed, its network detached and unpinned, its pause process
    /// ended. Idempotent; NotFound for a sandbox that never was (the kubelet then forgets it).
    func stopPodSandbox(_ reference: String) throws(RPCError) {
        guard var entry = sandboxes.find(reference) else {
            throw CRIError.notFound("an error occurred when try to find sandbox \(reference): not found")
        }
        for (id, container) in containers.all where container.sandboxID == entry.record.id {
            do { try engine.stop(id, timeout: 0) } catch {
                if case .noSuchContainer = error { continue }
                throw CRIError.from(error, "stopping container \(id) of sandbox \(entry.record.id)")
            }
        }
        releaseSandbox(&entry.record, removing: false)
        entry.record.state = .notReady
        do { try sandboxes.save(entry) } catch { throw CRIError.from(error, "saving sandbox \(entry.record.id)") }
    }

    /// Removes a sandbox and every container in it (forcibly). Idempotent: an unknown ID is not an error.
    func removePodSandbox(_ reference: String) throws(RPCError) {
        guard var entry = sandboxes.find(reference) else { return }
        for (id, container) in containers.all where container.sandboxID == entry.record.id {
            do { try engine.remove(id, force: true) } catch {
                if case .noSuchContainer = error {
                } else {
                    throw CRIError.from(error, "removing container \(id) of sandbox \(entry.record.id)")
                }
            }
            containers.forget(id)
        }
        releaseSandbox(&entry.record, removing: true)
        sandboxes.forget(entry.record.id)
    }

    /// Undoes what ``makeSandbox`` made: the network and PID namespace always; with `removing`, the IPC
    /// and UTS pins and /dev/shm too (a stopped sandbox keeps them until it is removed). Tolerant of
    /// what is already gone.
    func releaseSandbox(_ record: inout PodSandboxRecord, removing: Bool) {
        if let path = record.namespacePaths["network"] {
            if record.network != nil {
                do { try engine.networks.detach(containerID: record.id, netnsPath: path) } catch {
                    logger.warning("detaching sandbox \(record.id) from its network: \(error)")
                }
            }
            try? NetworkNamespace.remove(at: path)
            record.namespacePaths["network"] = nil
            record.network = nil
        }
        if record.pausePID > 0 {
            PodPIDInit.stop(record.pausePID)
            record.pausePID = 0
        }
        if let path = record.namespacePaths["pid"] {
            try? PinnedNamespace.remove(at: path)
            record.namespacePaths["pid"] = nil
        }
        guard removing else { return }
        for type in ["ipc", "uts"] {
            if let path = record.namespacePaths[type] { try? PinnedNamespace.remove(at: path) }
            record.namespacePaths[type] = nil
        }
        if let shm = record.files["/dev/shm"] {
            try? Mount.unmount(shm, flags: Int32(MNT_DETACH))
            rmdir(shm)
        }
    }

    /// The error for a runtime handler this engine does not know, nil for a known one ("" is the default).
    func runtimeHandlerError(_ handler: String) -> RPCError? {
        guard !handler.isEmpty else { return nil }
        if (try? OCIRuntime(name: handler, layout: engine.layout, named: engine.configuration.runtimes)) != nil {
            return nil
        }
        return CRIError.notFound("no runtime for \"\(handler)\" is configured")
    }

    /// The pod's resolv.conf: the kubelet's DNSConfig when it gives one, else the host's file (as
    /// containerd: the host's on the host's network, and for a pod the kubelet gave no DNS settings).
    static func resolvConf(_ config: Runtime_V1_PodSandboxConfig, hostNetwork: Bool) -> String {
        let dns = config.dnsConfig
        guard config.hasDnsConfig, !hostNetwork || !dns.servers.isEmpty || !dns.searches.isEmpty else {
            return (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
        }
        var lines: [String] = []
        if !dns.searches.isEmpty { lines.append("search " + dns.searches.joined(separator: " ")) }
        lines += dns.servers.map { "nameserver \($0)" }
        if !dns.options.isEmpty { lines.append("options " + dns.options.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The host's name (the UTS namespace this process is in).
    static func hostHostname() -> String {
        let name = (try? FileSystem.readString("/proc/sys/kernel/hostname")) ?? ""
        return name.hasSuffix("\n") ? String(name.dropLast()) : name
    }
}
