#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Runs CNI plugins the way the spec (1.0, "Execution protocol") asks of a runtime: one plugin process
/// per list entry, in order for ADD and CHECK (each gets the previous one's result as `prevResult`), in
/// reverse for DEL (each gets the cached ADD result). ADD results are cached on disk so that DEL and
/// CHECK work after a restart of the engine, and with the configuration the ADD used even if the network
/// definition changed or was removed since.
public struct CNI: Sendable {
    /// Where Debian's containernetworking-plugins and upstream's tarball put plugins.
    public static let defaultPluginDirectories = ["/usr/lib/cni", "/opt/cni/bin"]

    public var pluginDirectories: [String]
    /// Cached ADD results, one file per attachment (`<network>-<containerID>-<ifName>.json`, libcni's
    /// naming in /var/lib/cni/results).
    public var cacheDirectory: String

    public init(pluginDirectories: [String] = CNI.defaultPluginDirectories, cacheDirectory: String) {
        self.pluginDirectories = pluginDirectories
        self.cacheDirectory = cacheDirectory
    }

    /// What one invocation acts on: a container's namespace and interface (CNI_CONTAINERID, CNI_NETNS,
    /// CNI_IFNAME, CNI_ARGS).
    struct Target: Sendable {
        var containerID: String
        var netnsPath: String
        var ifName: String
        /// CNI_ARGS as `KEY=value` pairs (`IgnoreUnknown=1;K8S_POD_NAME=…`).
        var args: [(String, String)]

        init(containerID: String, netnsPath: String, ifName: String, args: [(String, String)] = []) {
            self.containerID = containerID
            self.netnsPath = netnsPath
            self.ifName = ifName
            self.args = args
        }
    }

    // MARK: Commands

    /// ADD: runs every plugin in order and caches the final result. If a plugin fails, the whole list is
    /// DELeted (in reverse, errors ignored) before the error is thrown, so nothing half-made remains.
    @discardableResult
    public func add(
        network: NetworkConfigList, containerID: String, netnsPath: String, ifName: String,
        capabilityArgs: [String: JSON] = [:], args: [(String, String)] = []
    ) throws(NetworkError) -> CNIResult {
        try Self.validate(containerID: containerID, ifName: ifName)
        let attachment = Target(containerID: containerID, netnsPath: netnsPath, ifName: ifName, args: args)
        var previous: JSON?
        for index in network.plugins.indices {
            do throws(NetworkError) {
                let output = try invoke(
                    "ADD", network: network, plugin: index, attachment: attachment,
                    capabilityArgs: capabilityArgs, prevResult: previous)
                guard let document = try? JSONCoding.decode(JSON.self, from: output) else {
                    throw .plugin(
                        CNIPluginError(
                            plugin: network.plugins[index].type, network: network.name, command: "ADD", code: 0,
                            message: "printed no JSON result",
                            details: String(decoding: output.prefix(200), as: UTF8.self),
                            exitStatus: "exit status 0", stderr: ""))
                }
                previous = document
            } catch {
                // Spec: a runtime cleans up a failed ADD with DEL. Plugins treat missing state as success.
                try? runDel(
                    network: network, attachment: attachment, capabilityArgs: capabilityArgs, prevResult: previous)
                throw error
            }
        }
        let result: CNIResult
        do throws(NetworkError) {
            result = try CNIResult(json: previous ?? .object([:]), source: "result of network \(network.name)")
            try writeCache(
                CacheEntry(
                    network: network, attachment: attachment, capabilityArgs: capabilityArgs, result: result.json))
        } catch {
            try? runDel(network: network, attachment: attachment, capabilityArgs: capabilityArgs, prevResult: previous)
            throw error
        }
        return result
    }

    /// CHECK: runs every plugin in order with the cached ADD result. Skipped for lists that disable it
    /// or whose version predates it (< 0.4.0).
    public func check(
        network: NetworkConfigList, containerID: String, netnsPath: String, ifName: String,
        capabilityArgs: [String: JSON]? = nil
    ) throws(NetworkError) {
        try Self.validate(containerID: containerID, ifName: ifName)
        guard let cached = cachedEntry(network: network.name, containerID: containerID, ifName: ifName) else {
            throw .notAttached(network: network.name, containerID: containerID, ifName: ifName)
        }
        guard !network.disableCheck, network.supportsCheck else { return }
        let attachment = Target(containerID: containerID, netnsPath: netnsPath, ifName: ifName)
        let hasIPv6 = (try? CNIResult(json: cached.result))?.ips.contains { $0.address.contains(":") } ?? false
        for index in network.plugins.indices {
            do {
                _ = try invoke(
                    "CHECK", network: network, plugin: index, attachment: attachment,
                    capabilityArgs: capabilityArgs ?? cached.capabilityArgs, prevResult: cached.result)
            } catch .plugin(let error) where Self.isPortmapIPv6CheckBug(error, hasIPv6: hasIPv6) {
                continue
            }
        }
    }

    /// The spec's rules (1.0, "Parameters"), which also keep both out of the cache file's path: a container
    /// ID is `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; an interface name has at most 15 bytes and no `/`, `:` or space.
    static func validate(containerID: String, ifName: String) throws(NetworkError) {
        guard Network.isValidName(containerID) else {
            throw .invalidConfiguration(
                source: "CNI_CONTAINERID", reason: "\"\(containerID)\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        }
        guard !ifName.isEmpty, ifName.utf8.count <= 15, ifName != ".", ifName != "..",
            !ifName.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace })
        else {
            throw .invalidConfiguration(source: "CNI_IFNAME", reason: "\"\(ifName)\" is not a valid interface name")
        }
    }

    /// portmap before 1.2 (Debian 12 ships 1.1.1) fails CHECK on an IPv4-only attachment whenever ip6tables
    /// exists: it looks for an IPv6 DNAT chain it never made (containernetworking/plugins#819). It checks
    /// IPv4 first, so reaching that message means the IPv4 rules are in place.
    static func isPortmapIPv6CheckBug(_ error: CNIPluginError, hasIPv6: Bool) -> Bool {
        error.plugin == "portmap" && !hasIPv6 && error.message.hasPrefix("could not check ipv6 dnat")
    }

    /// DEL: runs the plugins in reverse with the cached ADD result as `prevResult`, using the cached
    /// configuration when there is one (so DEL undoes what ADD did), else `network`. Succeeds when the
    /// attachment is already gone; the cache entry is removed only after every plugin succeeded.
    public func del(
        network: NetworkConfigList?, networkName: String? = nil, containerID: String, netnsPath: String,
        ifName: String, capabilityArgs: [String: JSON]? = nil
    ) throws(NetworkError) {
        let name = network?.name ?? networkName ?? ""
        try Self.validate(containerID: containerID, ifName: ifName)
        let cached = cachedEntry(network: name, containerID: containerID, ifName: ifName)
        guard let list = cached?.network ?? network else { return }  // never added, nothing known: nothing to undo
        let attachment = Target(containerID: containerID, netnsPath: netnsPath, ifName: ifName)
        try runDel(
            network: list, attachment: attachment, capabilityArgs: capabilityArgs ?? cached?.capabilityArgs ?? [:],
            prevResult: cached?.result)
        removeCache(network: list.name, containerID: containerID, ifName: ifName)
    }

    func runDel(
        network: NetworkConfigList, attachment: Target, capabilityArgs: [String: JSON],
        prevResult: JSON?
    ) throws(NetworkError) {
        var firstError: NetworkError?
        // Every plugin gets its DEL even if one fails: a failing firewall must not leave a veth behind.
        for index in network.plugins.indices.reversed() {
            do {
                _ = try invoke(
                    "DEL", network: network, plugin: index, attachment: attachment,
                    capabilityArgs: capabilityArgs, prevResult: prevResult)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    // MARK: Running one plugin

    /// Finds a plugin binary in the plugin directories.
    public func pluginPath(_ type: String) -> String? {
        for directory in pluginDirectories {
            let candidate = "\(directory)/\(type)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    func invoke(
        _ command: String, network: NetworkConfigList, plugin index: Int, attachment: Target,
        capabilityArgs: [String: JSON], prevResult: JSON?
    ) throws(NetworkError) -> [UInt8] {
        let type = network.plugins[index].type
        guard let path = pluginPath(type) else {
            throw .pluginNotFound(plugin: type, network: network.name, searched: pluginDirectories)
        }
        let input = network.pluginInput(index, capabilityArgs: capabilityArgs, prevResult: prevResult)
        let stdin: [UInt8]
        do { stdin = try JSONCoding.encode(input) } catch {
            throw .invalidConfiguration(
                source: "network \(network.name)", reason: "cannot encode plugin input: \(error)")
        }
        // The plugins run iptables, ip, modprobe … through PATH, so they get our environment (as
        // libcni passes os.Environ()), minus any CNI_ variable of ours.
        var environment = ChildProcess.currentEnvironment.filter { !$0.hasPrefix("CNI_") }
        if !environment.contains(where: { $0.hasPrefix("PATH=") }) {
            environment.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        }
        environment += [
            "CNI_COMMAND=\(command)",
            "CNI_CONTAINERID=\(attachment.containerID)",
            "CNI_NETNS=\(attachment.netnsPath)",
            "CNI_IFNAME=\(attachment.ifName)",
            "CNI_PATH=\(pluginDirectories.joined(separator: ":"))",
        ]
        if !attachment.args.isEmpty {
            environment.append("CNI_ARGS=" + attachment.args.map { "\($0.0)=\($0.1)" }.joined(separator: ";"))
        }
        let output: ChildProcess.Output
        do {
            output = try Self.withSIGPIPEBlocked { () throws(SystemCallError) -> ChildProcess.Output in
                try ChildProcess.run(path, arguments: [path], environment: environment, input: stdin)
            }
        } catch {
            throw .system(error)
        }
        guard output.status.succeeded else {
            throw .plugin(
                CNIPluginError.from(
                    stdout: output.stdout, stderr: output.stderr,
                    exitStatus: output.status.description, plugin: type,
                    network: network.name, command: command))
        }
        return output.stdout
    }

    /// A plugin that exits before reading its stdin (skel checks the environment first) makes our write
    /// fail with EPIPE — and raise SIGPIPE, which kills the process by default. The signal is synchronous
    /// and directed at the writing thread, so blocking it on this thread only, then consuming any pending
    /// one before unblocking, keeps the engine alive without touching the process-wide disposition.
    static func withSIGPIPEBlocked<T>(_ body: () throws(SystemCallError) -> T) throws(SystemCallError) -> T {
        var pipeOnly = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeOnly, &previous)
        defer {
            if sigismember(&previous, SIGPIPE) == 0 {
                var pending = sigset_t()
                sigpending(&pending)
                if sigismember(&pending, SIGPIPE) == 1 {
                    var immediately = timespec()
                    _ = sigtimedwait(&pipeOnly, nil, &immediately)
                }
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        return try body()
    }
}
