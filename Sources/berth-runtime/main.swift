import BerthRuntime

// `berth-runtime init` is the container's init re-exec'd by the runtime: dispatch it before any
// argument parsing, it must start as fast as possible.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "init" {
    ContainerInit.main()
}
RuntimeCommandLine.main(Array(CommandLine.arguments.dropFirst()))
