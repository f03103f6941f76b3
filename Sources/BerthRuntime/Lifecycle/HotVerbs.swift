/// The verbs an engine calls for every container — create, start, run, state, kill, delete — recognised
/// without ArgumentParser.
///
/// ArgumentParser builds its model of a command by reflection the first time it parses, which costs the
/// runtime process about 4 ms: a third of crun's whole `run`. These six verbs have few flags (runc's
/// spellings, long, short and `--flag=value`), so they are recognised here; anything else (help, an
/// unknown or malformed flag, a missing id) gives nil and goes to ArgumentParser in the executable,
/// which owns usage and error messages.
public enum HotVerbs {
    public enum Command: Equatable, Sendable {
        case create(CreateOptions)
        case run(CreateOptions, detach: Bool)
        case start(String)
        case state(String)
        case kill(String, signal: String, all: Bool)
        case delete(String, force: Bool)
    }

    /// The command `arguments` (after the global flags) names, if it is a plain use of a hot verb.
    public static func parse(_ arguments: [String]) -> Command? {
        guard let verb = arguments.first else { return nil }
        // Plain arrays and switches: a Set or Dictionary here would cost more to instantiate in a fresh
        // process than the parse itself.
        let valued: [String]
        let switches: [String]
        switch verb {
        case "create":
            valued = ["bundle", "pid-file", "console-socket", "preserve-fds"];
            switches = ["no-pivot", "no-new-keyring"]
        case "run":
            valued = ["bundle", "pid-file", "console-socket", "preserve-fds"];
            switches = ["no-pivot", "no-new-keyring", "detach"]
        case "start", "state": valued = []; switches = []
        case "kill": valued = []; switches = ["all"]
        case "delete": valued = []; switches = ["force"]
        default: return nil
        }
        var flags: [(name: String, value: String)] = []
        var positional: [String] = []
        var index = 1
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" { positional += arguments[index...]; break }
            guard word.hasPrefix("-"), word.utf8.count > 1 else { positional.append(word); continue }
            let isLong = word.hasPrefix("--")
            var name = String(word.dropFirst(isLong ? 2 : 1))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if !isLong {
                switch name {
                case "b": name = "bundle"
                case "d": name = "detach"
                case "a": name = "all"
                case "f": name = "force"
                default: return nil
                }
            }
            if valued.contains(name) {
                if value == nil, index < arguments.count { value = arguments[index]; index += 1 }
                guard let value else { return nil }
                flags.append((name, value))
            } else if switches.contains(name), value == nil {
                flags.append((name, ""))
            } else {
                return nil
            }
        }
        func flag(_ name: String) -> String? { flags.last { $0.name == name }?.value }
        switch verb {
        case "create", "run":
            guard positional.count == 1 else { return nil }
            var options = CreateOptions(id: positional[0], bundle: flag("bundle") ?? ".")
            options.pidFile = flag("pid-file")
            options.consoleSocket = flag("console-socket")
            options.noPivot = flag("no-pivot") != nil
            options.noNewKeyring = flag("no-new-keyring") != nil
            if let count = flag("preserve-fds") {
                guard let number = Int(count), number >= 0 else { return nil }
                options.preserveFds = number
            }
            return verb == "run" ? .run(options, detach: flag("detach") != nil) : .create(options)
        case "start", "state":
            guard positional.count == 1 else { return nil }
            return verb == "start" ? .start(positional[0]) : .state(positional[0])
        case "kill":
            guard positional.count == 1 || positional.count == 2 else { return nil }
            return .kill(
                positional[0], signal: positional.count == 2 ? positional[1] : "SIGTERM", all: flag("all") != nil)
        default:
            guard positional.count == 1 else { return nil }
            return .delete(positional[0], force: flag("force") != nil)
        }
    }
}
