#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import CBerthShim
import FoundationEssentials
import Testing

@Suite("Hooks, exec and console (root)", .enabled(if: isRealRoot && hasBusybox))
struct HookAndExecTests {
    /// A hook script that appends its name and the state it was given to a log.
    func hook(_ box: Sandbox, _ name: String, exit code: Int = 0, sleep seconds: Int = 0) throws -> Spec.Hook {
        let script = box.directory + "/hook-\(name).sh"
        let log = box.directory + "/hooks.log"
        let body =
            "#!/bin/sh\nread -r state\necho \"\(name) $state\" >> \(log)\n" + (seconds > 0 ? "sleep \(seconds)\n" : "")
            + "exit \(code)\n"
        try FileSystem.writeAtomically(script, Array(body.utf8), mode: 0o755)
        return Spec.Hook(path: "/bin/sh", args: ["sh", script], timeout: seconds > 0 ? 1 : nil)
    }

    @Test func everyHookRunsInOrderWithState() throws {
        let box = Sandbox("hooks")
        let id = box.id()
        var hooks = Spec.Hooks()
        hooks.prestart = [try hook(box, "prestart")]
        hooks.createRuntime = [try hook(box, "createRuntime")]
        hooks.poststart = [try hook(box, "poststart")]
        hooks.poststop = [try hook(box, "poststop")]
        // createContainer runs in the container's mount namespace before pivot_root: host paths resolve.
        hooks.createContainer = [try hook(box, "createContainer")]
        let bundle = box.bundle(script: "true") { $0.hooks = hooks }
        #expect(box.runtime(["run", "--bundle", bundle, id]).status == 0)
        let lines = try FileSystem.readString(box.directory + "/hooks.log").split(separator: "\n")
        #expect(
            lines.map { $0.split(separator: " ").first! } == [
                "prestart", "createRuntime", "createContainer", "poststart", "poststop",
            ])
        for line in lines { #expect(line.contains("\"id\":\"\(id)\"")) }
        #expect(lines.first?.contains("\"status\":\"creating\"") == true)
        #expect(lines.last?.contains("\"status\":\"stopped\"") == true)
    }

    @Test func failingPrestartHookFailsCreateAndLeavesNothing() throws {
        let box = Sandbox("hookfail")
        let id = box.id()
        var hooks = Spec.Hooks()
        hooks.prestart = [try hook(box, "prestart", exit: 7)]
        let bundle = box.bundle(script: "true") {
            $0.hooks = hooks; $0.linux?.cgroupsPath = "/\(box.prefix)"
        }
        let output = box.runtime(["create", "--bundle", bundle, id])
        #expect(output.status == 1)
        #expect(output.stderr.contains("prestart hook /bin/sh failed: exit status 7"))
        #expect(!FileSystem.exists(box.root + "/" + id))
        #expect(!FileSystem.exists("/sys/fs/cgroup/memory/\(box.prefix)"))
        #expect(mounts(under: box.directory).isEmpty)
    }

    @Test func hookTimeoutKillsIt() throws {
        let box = Sandbox("hooktime")
        var hooks = Spec.Hooks()
        hooks.createRuntime = [try hook(box, "slow", sleep: 30)]
        let bundle = box.bundle(script: "true") { $0.hooks = hooks }
        let output = box.runtime(["run", "--bundle", bundle, box.id()])
        #expect(output.status == 1)
        #expect(output.stderr.contains("timed out after 1s"))
    }

    @Test func execJoinsTheContainer() throws {
        let box = Sandbox("exec")
        let id = box.id()
        let bundle = box.bundle(script: "exec sleep 1000") { $0.hostname = "exec-box" }
        #expect(box.runtime(["run", "--detach", "--bundle", bundle, id]).status == 0)
        let output = box.runtime([
            "exec", "--env", "EXTRA=1", "--cwd", "/tmp", id, "sh", "-c",
            "hostname; pwd; echo $EXTRA; ps -o pid,args | grep -c '[s]leep 1000'; exit 5",
        ])
        #expect(output.status == 5, "\(output.stderr)")
        #expect(output.stdout == "exec-box\n/tmp\n1\n1\n")
        let processFile = box.directory + "/process.json"
        let process = Spec.Process(
            user: Spec.User(uid: 65534, gid: 65534), args: ["id", "-u"], env: ["PATH=/bin"], cwd: "/")
        try FileSystem.writeAtomically(processFile, Array(try JSONEncoder().encode(process)))
        let viaFile = box.runtime(["exec", "--process", processFile, id])
        #expect(viaFile.stdout == "65534\n", "\(viaFile.stderr)")
        let missing = box.runtime(["exec", id, "/no/such/program"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/no/such/program"))
    }

    @Test func consoleSocketReceivesThePtyMaster() throws {
        let box = Sandbox("console")
        let socketPath = box.directory + "/console.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socketPath.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        #expect(listen(listener, 1) == 0)
        let id = box.id()
        let bundle = box.bundle(script: "tty; echo on-the-terminal") { spec in
            spec.process?.terminal = true
            spec.process?.consoleSize = Spec.ConsoleSize(height: 40, width: 100)
        }
        #expect(box.runtime(["create", "--bundle", bundle, "--console-socket", socketPath, id]).status == 0)
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        var master: Int32 = -1
        var byte: UInt8 = 0
        #expect(berth_recv_fd(connection, &master, &byte, 1) >= 0)
        #expect(master >= 0)
        close(connection)
        #expect(box.runtime(["start", id]).status == 0)
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.contains("on-the-terminal") {
            let n = read(master, &buffer, buffer.count)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        close(master)
        #expect(text.contains("/dev/pts/0"))
        #expect(text.contains("on-the-terminal"))
    }
}
