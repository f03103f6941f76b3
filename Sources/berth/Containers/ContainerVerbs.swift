import ArgumentParser

/// Container verbs (run, ps, logs, exec …), owned by the engine layer, as docker's top-level commands.
let containerVerbs: [any ParsableCommand.Type] = [
    ContainerRunCommand.self, ContainerCreateCommand.self, ContainerStartCommand.self, ContainerStopCommand.self,
    ContainerRestartCommand.self, ContainerKillCommand.self, ContainerRemoveCommand.self, ContainerListCommand.self,
    ContainerLogsCommand.self, ContainerInspectCommand.self, ContainerWaitCommand.self, ContainerPauseCommand.self,
    ContainerUnpauseCommand.self, ContainerRenameCommand.self, ContainerExecCommand.self, ContainerStatsCommand.self,
    ContainerTopCommand.self, ContainerPortCommand.self, ContainerAttachCommand.self, SystemEventsCommand.self,
    ContainerCopyCommand.self,
    ContainerGroup.self, VolumeGroup.self, NetworkGroup.self, SystemGroup.self, SystemInfoCommand.self,
]

/// `berth container …`: the same verbs under one noun, as docker has them.
struct ContainerGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container", abstract: "Manage containers.",
        subcommands: [
            ContainerLs.self, ContainerRunCommand.self, ContainerCreateCommand.self, ContainerStartCommand.self,
            ContainerStopCommand.self, ContainerRestartCommand.self, ContainerKillCommand.self,
            ContainerRemoveCommand.self,
            ContainerLogsCommand.self, ContainerInspectCommand.self, ContainerWaitCommand.self,
            ContainerPauseCommand.self,
            ContainerUnpauseCommand.self, ContainerRenameCommand.self, ContainerExecCommand.self,
            ContainerStatsCommand.self, ContainerTopCommand.self,
            ContainerPortCommand.self, ContainerPruneCommand.self, ContainerAttachCommand.self,
            ContainerCleanupCommand.self,
        ])
}

/// `berth container ls` (docker's spelling of ps under the noun).
struct ContainerLs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List containers.", aliases: ["list"])
    @OptionGroup var list: ContainerListOptions
    func run() async throws { try await list.execute() }
}
