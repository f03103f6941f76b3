import ArgumentParser

/// Finds the command a command line names without parsing from the root: `berth run …` parsed as
/// `ContainerRunCommand.parseAsRoot(["…"])`.
///
/// ArgumentParser's root parse reflects over the whole command tree (every subcommand's options, for
/// completion scripts and help) and, in a static binary this size, every first protocol-conformance
/// lookup scans all of the binary's conformance records: ~20 ms of CPU before `berth run` does anything,
/// paid again by every monitor's `container cleanup`. Parsing only the named command costs a fraction.
///
/// Only the happy path is shortened: help, a name that is not a command, or any parse error goes back
/// to the root parse, so messages and usage lines are exactly the root's.
enum CommandDispatch {
    static func parse(_ arguments: [String]) -> (any ParsableCommand)? {
        guard
            !arguments.contains(where: {
                $0 == "--help" || $0 == "-h" || $0 == "help" || $0 == "--version"
                    || $0 == "--generate-completion-script"
            })
        else {
            return nil
        }
        // The agent, a long-lived process measured by its RSS: straight to its parser, without building
        // the command tree, whose configurations (every subcommand's) fault in ~2 MB of code and metadata.
        if arguments.first == "agent" { return try? ClusterAgent.parseAsRoot(Array(arguments.dropFirst())) }
        var command: any ParsableCommand.Type = Berth.self
        var rest = arguments[...]
        while let name = rest.first,
            let sub = command.configuration.subcommands.first(where: {
                $0.configuration.commandName == name || $0.configuration.aliases.contains(name)
            })
        {
            command = sub
            rest = rest.dropFirst()
        }
        guard command != Berth.self, command.configuration.subcommands.isEmpty else { return nil }
        return try? command.parseAsRoot(Array(rest))
    }
}
