import ArgumentParser
import Foundation
import Testing
@testable import berth

/// `HotRun` must read every command line it accepts exactly as ArgumentParser reads it, and leave
/// everything it is not sure of to ArgumentParser.
@Suite struct HotRunTests {
    /// ArgumentParser's reading of `arguments` (after `berth`), in HotRun's terms.
    func argumentParser(_ arguments: [String]) throws -> HotRun {
        var words = arguments[...]
        if words.first == "container" { words = words.dropFirst() }
        let verb = words.removeFirst()
        if verb == "run" {
            let command = try #require(try ContainerRunCommand.parseAsRoot(Array(words)) as? ContainerRunCommand)
            return HotRun(
                verb: .run, image: command.options.settings, settings: command.run.settings, detach: command.detach,
                signalProxy: command.signalProxy, pull: command.pull, quiet: command.quiet, imageName: command.image,
                command: command.command)
        }
        let command = try #require(try ContainerCreateCommand.parseAsRoot(Array(words)) as? ContainerCreateCommand)
        return HotRun(
            verb: .create, image: command.options.settings, settings: command.run.settings, pull: command.pull,
            quiet: command.quiet, imageName: command.image, command: command.command)
    }

    static let accepted: [[String]] = [
        ["run", "--rm", "img", "true"],
        ["run", "--rm", "--network", "none", "img", "true"],
        ["run", "--rm", "--network=none", "img"],
        ["container", "run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "img"],
        ["run", "-it", "--rm", "img", "sh"],
        ["run", "-dit", "img", "sh", "-c", "echo $HOME; exit 3"],
        ["run", "-e", "A=1", "--env", "B=2", "--env=C=3", "img", "env"],
        ["run", "-v", "/src:/dst:ro", "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/run", "img", "ls", "--rm", "-x"],
        ["run", "-m", "64m", "--memory-swap", "128m", "--cpus", "1.5", "-c", "512", "--pids-limit", "100", "img"],
        ["run", "--cpuset-cpus", "0", "--stop-timeout", "3", "--health-retries", "2", "--health-cmd", "true", "img"],
        ["run", "-u", "1000:1000", "-w", "/tmp", "--entrypoint", "sh", "--hostname", "h", "--domainname", "d", "img"],
        [
            "run", "-l", "a=b", "--label", "c", "--read-only", "--privileged", "--cap-add", "NET_ADMIN", "--cap-drop",
            "ALL", "img",
        ],
        [
            "run", "--security-opt", "no-new-privileges", "--ulimit", "nofile=10:20", "--device", "/dev/null", "--init",
            "img",
        ],
        [
            "run", "--restart", "on-failure:3", "--runtime", "runc", "--stop-signal", "SIGINT", "--shm-size", "1m",
            "img",
        ],
        [
            "run", "--net", "host", "--dns", "1.1.1.1", "--dns-search", "x", "--dns-option", "ndots:1", "--add-host",
            "a:1.2.3.4", "img",
        ],
        ["run", "--network", "n1", "--ip", "10.0.0.5", "--network-alias", "db", "-P", "--expose", "80", "img"],
        ["run", "--log-driver", "none", "--log-opt", "max-size=1m", "--sysctl", "net.ipv4.ip_forward=1", "img"],
        [
            "run", "--no-healthcheck", "--health-interval", "1s", "--health-timeout", "2s", "--health-start-period",
            "3s", "img",
        ],
        ["run", "--env-file", "/tmp/e", "--memory-reservation", "10m", "--cpuset-mems", "0", "img"],
        [
            "run", "--root", "/tmp/r", "--insecure-registry", "r:5000", "--ca-file", "/ca", "--auth-config", "/a.json",
            "img",
        ],
        ["run", "--pull", "never", "-q", "--no-sig-proxy", "img"],
        ["run", "--sig-proxy", "--detach", "--interactive", "--tty", "--publish-all", "img"],
        ["create", "--name", "c", "-v", "vol:/data", "img", "cmd"],
        ["create", "--pull", "always", "--quiet", "img"],
        ["run", "img:tag@sha256:abc"],
        ["run", "img", "--", "x"],
    ]

    @Test(arguments: accepted)
    func readsWhatItTakesAsArgumentParserDoes(_ arguments: [String]) throws {
        let hot = try #require(HotRun.parse(arguments), "\(arguments)")
        #expect(hot == (try argumentParser(arguments)), "\(arguments)")
    }

    @Test(arguments: [
        ["run", "--help"], ["run", "-h", "img"], ["run", "img", "ls", "--help"], ["run", "--version"],
        ["run", "--", "img"], ["run", "--rm", "--rm", "img"], ["run", "--name", "a", "--name", "b", "img"],
        ["run", "-d", "--detach", "img"], ["run", "--sig-proxy", "--no-sig-proxy", "img"],
        ["run", "--memory-swap", "-1", "img"], ["run", "-e=A=1", "img"], ["run", "-ite", "A=1", "img"],
        ["run", "-dp", "80:80", "img"], ["run", "--pids-limit", "many", "img"],
        ["run", "--stop-timeout", "1.5", "img"],
        ["run", "--rm=true", "img"], ["run", "--name=", "img"], ["run", "--unknown", "img"], ["run", "-Z", "img"],
        ["run", "--rm"], ["run"], ["create", "-d", "img"], ["create", "--no-sig-proxy", "img"], ["ps"],
        ["container", "ls"],
        ["run", "--name"],
    ])
    func leavesTheRestToArgumentParser(_ arguments: [String]) {
        #expect(HotRun.parse(arguments) == nil, "\(arguments)")
    }

    /// Every option ArgumentParser knows for the verb is in the tables, with the same names and the
    /// same way of taking a value; and the tables hold nothing more.
    @Test(arguments: ["run", "create"])
    func theTablesAreArgumentParsersOptions(_ verb: String) throws {
        let dump = verb == "run" ? ContainerRunCommand._dumpHelp() : ContainerCreateCommand._dumpHelp()
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
        let command = try #require(root["command"] as? [String: Any])
        let arguments = try #require(command["arguments"] as? [[String: Any]])
        var expected: [String: HotRun.Kind] = [:]
        for argument in arguments where (argument["kind"] as? String) != "positional" {
            let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { name -> String? in
                guard let n = name["name"] as? String else { return nil }
                return (name["kind"] as? String) == "short" ? "-\(n)" : "--\(n)"
            }
            if names.contains("--help") || names.contains("--version") { continue }
            let kind: HotRun.Kind =
                argument["kind"] as? String == "flag"
                ? .flag : (argument["isRepeating"] as? Bool == true ? .repeated : .single)
            for name in names { expected[name] = kind }
        }
        let probe = HotRun(verb: verb == "run" ? .run : .create)
        for (name, kind) in expected {
            #expect(probe.kind(of: name) == kind, "\(verb) \(name)")
        }
        let tableNames =
            RunSettings.options.flatMap(\.names) + ImageSettings.options.flatMap(\.names)
            + (verb == "run" ? HotRun.verbOptions + HotRun.runOnlyOptions : HotRun.verbOptions).flatMap(\.names)
        #expect(Set(tableNames) == Set(expected.keys), "\(Set(tableNames).symmetricDifference(expected.keys))")
    }
}
