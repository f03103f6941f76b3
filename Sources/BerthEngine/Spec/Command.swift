import BerthImage

extension SpecBuilder {
    /// The program and arguments, by docker's rules: an entrypoint given with the request replaces the
    /// image's and drops the image's Cmd; a Cmd given replaces the image's; `--entrypoint ""` clears it.
    public static func command(_ configuration: ContainerConfiguration, image: ImageConfig.ContainerConfig?) throws(EngineError) -> [String] {
        var entrypoint = image?.Entrypoint ?? []
        var cmd = image?.Cmd ?? []
        if let requested = configuration.entrypoint {
            entrypoint = requested == [""] ? [] : requested
            cmd = []
        }
        if let requested = configuration.cmd { cmd = requested }
        let command = entrypoint + cmd
        guard !command.isEmpty else {
            throw .invalidArgument(what: "command", reason: "no command specified")
        }
        return command
    }
}
