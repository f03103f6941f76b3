#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// `ps` in table form: runs ps(1) with the given arguments and keeps the header and the rows whose
/// PID column is one of the container's processes, as runc does.
public enum ProcessTable {
    public static func render(pids: [Int32], psArguments: [String]) throws(RuntimeError) -> String {
        let output = try capture(["ps"] + psArguments)
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return "" }
        let header = lines.removeFirst()
        guard let pidColumn = header.split(separator: " ").firstIndex(of: "PID") else {
            throw .other("ps output has no PID column")
        }
        let wanted = Set(pids)
        var result = header + "\n"
        for line in lines where !line.isEmpty {
            let fields = line.split(separator: " ")
            if fields.count > pidColumn, let pid = Int32(fields[pidColumn]), wanted.contains(pid) {
                result += line + "\n"
            }
        }
        return result
    }

    static func capture(_ arguments: [String]) throws(RuntimeError) -> String {
        let pipe = try RuntimeError.wrap("ps pipe") { () throws(SystemCallError) in try Pipe() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipe.writing.rawValue, 1)
        var pid: pid_t = 0
        let environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        let result = withCStringArray(arguments) { argv in
            withCStringArray(environment) { envp in
                posix_spawnp(
                    &pid, "ps", &actions, nil, UnsafeMutablePointer(mutating: argv),
                    UnsafeMutablePointer(mutating: envp))
            }
        }
        guard result == 0 else {
            throw .system(SystemCallError(call: "posix_spawn", errno: result, subject: "ps"), context: "ps")
        }
        pipe.writing.close()
        let bytes = (try? pipe.reading.readAll()) ?? []
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return String(decoding: bytes, as: UTF8.self)
    }
}
