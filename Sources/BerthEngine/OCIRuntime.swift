#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// An OCI runtime, reached only through its command line (runc's): Berth's own, runc, crun, or any
/// binary a user names. The engine never links a runtime's internals, so every runtime is equal.
public struct OCIRuntime: Sendable {
    /// As the user named it (`berth`, `runc`, `crun`, `/opt/bin/youki`).
    public let name: String
    public let path: String
    /// Put before every verb: `--root <run>/runtime/<name>`, so runtimes never see each other's state.
    public let globalArguments: [String]

    /// Resolves `name`: `berth` (the default) is `berth-runtime` beside the running executable or in
    /// PATH; a bare name is looked up in PATH; anything with a slash is used as it is.
    public init(name: String, layout: EngineLayout, named: [String: String] = [:]) throws(EngineError) {
        self.name = name
        let candidates: [String]
        switch name {
        case _ where named[name] != nil:
            candidates = [named[name]!]
        case "berth", "berth-runtime", "":
            candidates = [OCIRuntime.besideExecutable("berth-runtime"), "berth-runtime"].compactMap { $0 }
        default:
            candidates = [name]
        }
        guard let found = candidates.lazy.compactMap({ ChildProcess.lookup($0) }).first else {
            throw .invalidArgument(
                what: "runtime",
                reason: "unknown or invalid runtime name: \(name) (no executable \(candidates.last ?? name) found)")
        }
        let key =
            name.contains("/") ? String(name.split(separator: "/").last ?? "custom") : (name.isEmpty ? "berth" : name)
        // crun 1.8 refuses a hybrid cgroup host: it runs through the monitor's v1-only view of the cgroups.
        if found.hasSuffix("/crun"), CgroupLayout.isHybridWithControllers,
            let monitor = OCIRuntime.besideExecutable("berth-monitor") ?? ChildProcess.lookup("berth-monitor")
        {
            path = monitor
            globalArguments = ["--legacy-cgroups", found, "--root", layout.runtimeRoot(key)]
        } else {
            path = found
            globalArguments = ["--root", layout.runtimeRoot(key)]
        }
    }

    /// Berth's runtime passes a terminal to a console socket and still waits for the process; runc and
    /// crun take a console socket only with `--detach`.
    public var takesConsoleSocketInForeground: Bool { path.hasSuffix("/berth-runtime") }

    /// A program that sits next to the one running (`/usr/local/bin/berth` → `/usr/local/bin/berth-runtime`).
    static func besideExecutable(_ program: String) -> String? {
        guard let executable = try? FileSystem.realPath("/proc/self/exe") else { return nil }
        let candidate = FileSystem.parent(of: executable) + "/" + program
        return access(candidate, X_OK) == 0 ? candidate : nil
    }

    /// Runs `verb arguments…` and returns its output; a failure throws with what the runtime said.
    @discardableResult
    public func run(_ arguments: [String], operation: String? = nil) throws(EngineError) -> ChildProcess.Output {
        let output: ChildProcess.Output
        do {
            output = try ChildProcess.run(
                path, arguments: [path] + globalArguments + arguments, environment: ChildProcess.currentEnvironment)
        } catch {
            throw .system(error, context: "running \(path)")
        }
        guard output.status.succeeded else {
            throw .runtimeFailed(
                runtime: name, operation: operation ?? arguments.first ?? "",
                output: output.stderrText + output.stdoutText)
        }
        return output
    }

    public func kill(_ id: String, signal: Int32, all: Bool = false) throws(EngineError) {
        try run(["kill"] + (all ? ["--all"] : []) + [id, String(signal)])
    }

    /// `delete --force`: tolerant of a container the runtime no longer knows.
    public func forceDelete(_ id: String) {
        _ = try? ChildProcess.run(
            path, arguments: [path] + globalArguments + ["delete", "--force", id],
            environment: ChildProcess.currentEnvironment)
    }

    /// The runtime's `state` status (`created`, `running`, `paused`, `stopped`), nil if it does not know the container.
    public func status(_ id: String) -> String? {
        guard
            let output = try? ChildProcess.run(
                path, arguments: [path] + globalArguments + ["state", id], environment: ChildProcess.currentEnvironment),
            output.status.succeeded
        else { return nil }
        struct State: Decodable { var status: String }
        return RecordFile.decode(State.self, output.stdout)?.status
    }
}
