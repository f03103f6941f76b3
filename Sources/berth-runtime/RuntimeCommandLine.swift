#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthRuntime

/// runc's global flags, which come before the verb (`berth-runtime --root R --log L create …`).
struct GlobalOptions: Sendable {
    var root = StateStore.defaultRoot
    var systemdCgroup = false

    nonisolated(unsafe) static var current = GlobalOptions()

    /// Consumes the global flags at the front of `arguments`; returns the rest.
    static func parse(_ arguments: [String]) -> [String] {
        var rest = arguments[...]
        var options = GlobalOptions()
        func value(_ flag: String) -> String {
            if let equals = flag.firstIndex(of: "=") { return String(flag[flag.index(after: equals)...]) }
            rest = rest.dropFirst()
            guard let next = rest.first else { fail("flag needs an argument: \(flag)") }
            return next
        }
        while let word = rest.first, word.hasPrefix("-") {
            let name = word.firstIndex(of: "=").map { String(word[..<$0]) } ?? word
            switch name {
            case "--root": options.root = value(word)
            case "--log": RuntimeLog.path = value(word)
            case "--log-format":
                let format = value(word)
                guard let parsed = RuntimeLog.Format(rawValue: format) else {
                    fail("invalid log format \"\(format)\" (text or json)")
                }
                RuntimeLog.format = parsed
            case "--debug": RuntimeLog.debug = true
            case "--systemd-cgroup": options.systemdCgroup = true
            case "--rootless": _ = value(word)
            case "--criu": _ = value(word)
            case "--version", "-v":
                print(versionText)
                exit(0)
            case "--help", "-h":
                return ["--help"]
            default:
                fail("flag provided but not defined: \(word)")
            }
            rest = rest.dropFirst()
        }
        current = options
        return Array(rest)
    }

    static func fail(_ message: String) -> Never {
        RuntimeLog.error(message)
        exit(1)
    }
}

let versionText = """
    berth-runtime version 0.1.0
    spec: 1.2.0
    """

/// Maps a runtime failure to runc's behaviour: the message in the log (and stderr), exit status 1.
func runOrExit(_ body: () throws(RuntimeError) -> Void) {
    do {
        try body()
    } catch {
        RuntimeLog.error(error.description)
        exit(1)
    }
}

func runtime() -> Runtime {
    if GlobalOptions.current.systemdCgroup {
        GlobalOptions.fail(
            "--systemd-cgroup is not supported by berth-runtime: it manages cgroups through cgroupfs only")
    }
    return Runtime(root: GlobalOptions.current.root)
}

struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-runtime",
        abstract: "Berth's OCI runtime, with runc's command line.",
        discussion:
            "Global options (before the command): --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --version",
        subcommands: [
            Create.self, Start.self, Run.self, State.self, Kill.self, Delete.self, List.self, PS.self,
            Exec.self, Pause.self, Resume.self, Update.self, SpecCommand.self, Features.self,
        ])
}

enum RuntimeCommandLine {
    static func main(_ arguments: [String]) -> Never {
        let rest = GlobalOptions.parse(arguments)
        if let command = HotVerbs.parse(rest) { HotVerbs.execute(command) }
        do {
            var command = try RuntimeCommand.parseAsRoot(rest)
            try command.run()
            exit(0)
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            let message = RuntimeCommand.fullMessage(for: error)
            let code = RuntimeCommand.exitCode(for: error).rawValue
            if code == 0 {
                print(message)
            } else {
                RuntimeLog.error(message)
            }
            Glibc.exit(code == 0 ? 0 : 1)
        }
    }
}
