import BerthImage
import BerthOS

/// The container's command line, environment and working directory from the request and the image,
/// by docker's rules (moby `daemon/commit.go` merge, `mergeAndVerifyConfig`, `getEntrypointAndArgs`,
/// `container.CreateDaemonEnvironment`).
public enum ContainerProcess {
    /// docker's PATH when neither the image nor the request sets one.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Entrypoint followed by Cmd.
    ///
    /// - request entrypoint nil (not given): the image's entrypoint; the request's cmd if non-empty, else
    ///   the image's cmd.
    /// - request entrypoint given, non-empty (`--entrypoint sh`): it replaces the image's and the image's cmd
    ///   is dropped; only the request's cmd follows it.
    /// - `[""]` (docker's CLI for `--entrypoint ""`): as above, then cleared: the command is the request's
    ///   cmd alone.
    /// - `[]` (the API's empty entrypoint): no entrypoint, and the image's cmd is still used when the
    ///   request has none — docker's merge treats an empty list like an absent cmd.
    public static func arguments(
        request: ContainerConfiguration,
        image: ImageConfig.ContainerConfig?
    ) throws(EngineError) -> [String] {
        var entrypoint = request.entrypoint
        var cmd = request.cmd ?? []
        if (entrypoint ?? []).isEmpty {
            if cmd.isEmpty { cmd = image?.Cmd ?? [] }
            if entrypoint == nil { entrypoint = image?.Entrypoint }
        }
        if entrypoint == [""] { entrypoint = [] }
        let arguments = (entrypoint ?? []) + cmd
        guard !arguments.isEmpty else {
            throw .invalidArgument(what: "command", reason: "no command specified")
        }
        return arguments
    }

    /// PATH, HOSTNAME and (with a terminal) TERM=xterm first, then the request's variables, then the
    /// image's that the request does not name; a variable named again replaces the earlier one in place.
    ///
    /// A request entry `KEY` without `=` removes KEY (the image's, or PATH/HOSTNAME/TERM). docker's CLI
    /// turns `-e KEY` into `KEY=value` from the caller's environment before sending, and sends `KEY` alone
    /// only when the caller has no such variable; callers of this engine do the same.
    public static func environment(
        request: ContainerConfiguration, image: ImageConfig.ContainerConfig?,
        hostname: String
    ) -> [String] {
        // docker's merge: the request's entries, then the image's whose key the request does not name.
        let requestKeys = Set(request.env.map(key))
        let configured = request.env + (image?.Env ?? []).filter { !requestKeys.contains(key($0)) }

        var environment: [String?] = ["PATH=" + defaultPath, "HOSTNAME=" + hostname]
        if request.tty { environment.append("TERM=xterm") }
        var position: [String: Int] = [:]
        for (index, entry) in environment.enumerated() { position[key(entry!)] = index }
        for entry in configured {
            guard entry.contains("=") else {
                if let index = position[entry] { environment[index] = nil }
                continue
            }
            if let index = position[key(entry)] {
                environment[index] = entry
            } else {
                environment.append(entry)
            }
        }
        return environment.compactMap { $0 }
    }

    /// The request's working directory, else the image's, else `/`; it must be absolute.
    public static func workingDirectory(
        request: ContainerConfiguration,
        image: ImageConfig.ContainerConfig?
    ) throws(EngineError) -> String {
        let directory = [request.workingDir, image?.WorkingDir].compactMap { $0 }.first { !$0.isEmpty } ?? "/"
        guard directory.hasPrefix("/") else {
            throw .invalidArgument(
                what: "--workdir",
                reason: "the working directory '\(directory)' is invalid, it needs to be an absolute path")
        }
        return FileSystem.clean(directory)
    }

    static func key(_ entry: String) -> String {
        entry.firstIndex(of: "=").map { String(entry[..<$0]) } ?? entry
    }
}
