/// `berth run` and `berth create` parsed without ArgumentParser, for the command lines people type
/// most (berth-runtime's HotVerbs does the same for runc's verbs).
///
/// ArgumentParser builds `run`'s 60 options by reflection in every fresh process, and in a static
/// binary this size each first protocol-conformance lookup scans all of the binary's conformance
/// records: ~8 ms of CPU before `berth run` does anything, an eighth of `run --rm`. This parser reads
/// the same options from plain tables (``RunSettings/options``, ``ImageSettings/options``) and hands
/// the same plain values to the same code (``ContainerRunCommand/execute``).
///
/// It only takes what it is sure ArgumentParser would take the same way. Anything else gives nil and
/// ArgumentParser parses the line, so every message, help text and refusal stays ArgumentParser's:
/// an unknown option, `--`, help or version words anywhere, an option given twice that is not
/// repeatable, a value that looks like an option, `=` after a short name, a short group that is not
/// all flags, a number that is not one, no image. `HotRunTests` holds it to ArgumentParser's results.
struct HotRun: Equatable {
    enum Verb: Equatable { case run, create }

    var verb: Verb
    var image = ImageSettings()
    var settings = RunSettings()
    var detach = false
    var signalProxy = true
    var pull = "missing"
    var quiet = false
    var imageName = ""
    var command: [String] = []

    /// The options `run` and `create` have besides ``RunSettings`` and ``ImageSettings``.
    static let verbOptions: [HotOption<HotRun>] = [
        .single(["--pull"]) {
            $0.pull = $1; return true
        },
        .flag(["-q", "--quiet"]) { $0.quiet = true },
    ]
    static let runOnlyOptions: [HotOption<HotRun>] = [
        .flag(["-d", "--detach"]) { $0.detach = true },
        .flag(["--sig-proxy"]) { $0.signalProxy = true },
        .flag(["--no-sig-proxy"]) { $0.signalProxy = false },
    ]

    /// What the words after `berth` ask for, if they are a plain `run` or `create` (also under `container`).
    static func parse(_ arguments: [String]) -> HotRun? {
        var words = arguments[...]
        if words.first == "container" { words = words.dropFirst() }
        var hot: HotRun
        switch words.first {
        case "run": hot = HotRun(verb: .run)
        case "create": hot = HotRun(verb: .create)
        default: return nil
        }
        words = words.dropFirst()
        // CommandDispatch's rule: these anywhere go to ArgumentParser.
        guard
            !arguments.contains(where: {
                $0 == "--help" || $0 == "-h" || $0 == "help" || $0 == "--version"
                    || $0 == "--generate-completion-script"
            })
        else {
            return nil
        }
        var given: [String] = []
        while let word = words.first {
            words = words.dropFirst()
            if word == "--" { return nil }
            guard word.hasPrefix("-"), word.utf8.count > 1 else {
                hot.imageName = word
                hot.command = Array(words)
                return hot
            }
            var names: [String]
            var attached: String?
            if word.hasPrefix("--") {
                if let equals = word.firstIndex(of: "=") {
                    names = [String(word[..<equals])]
                    attached = String(word[word.index(after: equals)...])
                    if attached!.isEmpty { return nil }
                } else {
                    names = [word]
                }
            } else {
                if word.contains("=") { return nil }
                names = word.dropFirst().map { "-\($0)" }
            }
            for (position, name) in names.enumerated() {
                guard let kind = hot.kind(of: name) else { return nil }
                let isLast = position == names.count - 1
                if kind != .repeated {
                    // Given twice: ArgumentParser decides (it may take the last, or refuse).
                    if given.contains(name) || given.contains(where: { hot.sameOption($0, name) }) { return nil }
                    given.append(name)
                }
                if kind == .flag {
                    if attached != nil { return nil }
                    _ = hot.apply(name, value: nil)
                    continue
                }
                // An option with a value: alone, or the last of a short group? Only alone here.
                guard names.count == 1, isLast else { return nil }
                let value: String
                if let attached {
                    value = attached
                } else {
                    guard let next = words.first, !next.hasPrefix("-") else { return nil }
                    value = next
                    words = words.dropFirst()
                }
                guard hot.apply(name, value: value) else { return nil }
            }
        }
        return nil
    }

    enum Kind: Equatable { case flag, single, repeated }

    private func tables() -> (
        run: [HotOption<RunSettings>], image: [HotOption<ImageSettings>], verb: [HotOption<HotRun>]
    ) {
        (
            RunSettings.options, ImageSettings.options,
            verb == .run ? HotRun.verbOptions + HotRun.runOnlyOptions : HotRun.verbOptions
        )
    }

    func kind(of name: String) -> Kind? {
        let (run, image, verb) = tables()
        if let o = run.first(where: { $0.names.contains(name) }) { return o.kind }
        if let o = image.first(where: { $0.names.contains(name) }) { return o.kind }
        if let o = verb.first(where: { $0.names.contains(name) }) { return o.kind }
        return nil
    }

    /// Two names of one option (`-e` and `--env`); `--sig-proxy` and `--no-sig-proxy` are one too.
    func sameOption(_ a: String, _ b: String) -> Bool {
        if (a == "--sig-proxy" && b == "--no-sig-proxy") || (a == "--no-sig-proxy" && b == "--sig-proxy") {
            return true
        }
        let (run, image, verb) = tables()
        return run.contains { $0.names.contains(a) && $0.names.contains(b) }
            || image.contains { $0.names.contains(a) && $0.names.contains(b) }
            || verb.contains { $0.names.contains(a) && $0.names.contains(b) }
    }

    /// Sets the option called `name`; false for a value ArgumentParser would refuse.
    mutating func apply(_ name: String, value: String?) -> Bool {
        let (run, image, verb) = tables()
        if let o = run.first(where: { $0.names.contains(name) }) { return o.apply(&settings, value) }
        if let o = image.first(where: { $0.names.contains(name) }) { return o.apply(&self.image, value) }
        if let o = verb.first(where: { $0.names.contains(name) }) { return o.apply(&self, value) }
        return false
    }

    func execute() async throws {
        switch verb {
        case .run:
            try await ContainerRunCommand.execute(
                image, settings, detach: detach, signalProxy: signalProxy, pull: pull, quiet: quiet,
                image: imageName, command: command)
        case .create:
            try await ContainerCreateCommand.execute(
                image, settings, pull: pull, quiet: quiet, image: imageName, command: command)
        }
    }

    static func == (a: HotRun, b: HotRun) -> Bool {
        a.verb == b.verb && a.image == b.image && a.settings == b.settings && a.detach == b.detach
            && a.signalProxy == b.signalProxy
            && a.pull == b.pull && a.quiet == b.quiet && a.imageName == b.imageName && a.command == b.command
    }
}

/// One option of a hand-written parser's table: its names and how it takes its value.
enum HotOption<Settings>: Sendable {
    case flag([String], @Sendable (inout Settings) -> Void)
    /// False from the setter: a value ArgumentParser would refuse (not a number).
    case single([String], @Sendable (inout Settings, String) -> Bool)
    case repeated([String], @Sendable (inout Settings, String) -> Void)

    var names: [String] {
        switch self {
        case .flag(let n, _), .single(let n, _), .repeated(let n, _): return n
        }
    }

    var kind: HotRun.Kind {
        switch self {
        case .flag: return .flag
        case .single: return .single
        case .repeated: return .repeated
        }
    }

    func apply(_ settings: inout Settings, _ value: String?) -> Bool {
        switch self {
        case .flag(_, let set): set(&settings)
        case .single(_, let set): return value.map { set(&settings, $0) } ?? false
        case .repeated(_, let set):
            guard let value else { return false }
            set(&settings, value)
        }
        return true
    }
}
