import BerthOS

/// Runs iproute2's programs (`ip`, `bridge`): the one way Berth's network code changes links, routes,
/// neighbours and forwarding entries it has no netlink code of its own for. A missing program or one
/// that cannot be started is a failed result naming it, never a crash.
public enum IPRoute2 {
    public struct Result: Sendable {
        public var ok: Bool
        public var output: String
        public var error: String
        public var lines: [String] { output.split(separator: "\n").map(String.init) }
    }

    static let path = "/usr/sbin:/sbin:/usr/bin:/bin"

    /// `ip ARGUMENTS…`
    public static func ip(_ arguments: [String]) -> Result { run("ip", arguments) }

    /// `program ARGUMENTS…` with `input` on its standard input (`-batch -` takes commands there).
    public static func run(_ program: String, _ arguments: [String], input: String = "") -> Result {
        guard let executable = ChildProcess.lookup(program, path: path) else {
            return Result(ok: false, output: "", error: "\(program) (iproute2) is not installed")
        }
        guard
            let result = try? ChildProcess.run(
                executable, arguments: [program] + arguments, environment: ["PATH=\(path)"], input: Array(input.utf8))
        else { return Result(ok: false, output: "", error: "\(program) could not be run") }
        return Result(ok: result.status.succeeded, output: result.stdoutText, error: result.stderrText)
    }
}
