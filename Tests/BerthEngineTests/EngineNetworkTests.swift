#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// Containers on the default bridge and on user networks, as a docker user reaches them: published ports
/// from the host's loopback, containers reaching each other, and nothing left behind afterwards.
@Suite(.serialized, .enabled(if: isRealRoot, "creates networks and containers: needs real root"))
final class EngineNetworkTests {
    let box: EngineBox

    init() throws { box = try EngineBox("network") }
    deinit {
        box.tearDown()
    }

    /// A free TCP port on the host's loopback.
    func freePort() -> UInt16 { freeLocalPort() }

    /// What an HTTP GET to 127.0.0.1:port answers (curl, as a user would check).
    func get(_ port: UInt16) throws -> String {
        try ChildProcess.run(
            "/usr/bin/curl", arguments: ["curl", "-s", "--max-time", "2", "http://127.0.0.1:\(port)/"], environment: []
        ).stdoutText
    }

    static let server =
        "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from %s\\n' $(hostname) | nc -l -p 80; done"

    @Test func aPublishedPortAnswersOnTheHostsLoopback() throws {
        let port = freePort()
        let run = try box.berth([
            "run", "-d", "--name", "web", "-h", "webhost", "-p", "\(port):80", box.image, "sh", "-c", Self.server,
        ])
        #expect(run.status == .exited(0), "\(run.stderrText)")
        #expect(try box.eventually { try get(port) == "hello from webhost\n" })
        #expect(try box.berth(["port", "web"]).stdoutText == "80/tcp -> 0.0.0.0:\(port)\n")
        let address = try box.inspect("web", "{{.NetworkSettings.IPAddress}}")
        #expect(address.hasPrefix("10.89."))
        #expect(try box.berth(["exec", "web", "cat", "/etc/hosts"]).stdoutText.contains("\(address)\twebhost"))
        // The same host port again: refused, and nothing of the second container runs.
        let clash = try box.berth(["run", "-d", "--name", "clash", "-p", "\(port):80", box.image, "sleep", "1000"])
        #expect(clash.status == .exited(125))
        #expect(clash.stderrText.contains("port is already allocated"))
        #expect(try box.inspect("clash", "{{.State.Status}}") == "created")
        _ = try box.berth(["rm", "-f", "web", "clash"])
        #expect(try get(port).isEmpty)
    }

    @Test func containersOnAUserNetworkReachEachOther() throws {
        let name = "bt\(UInt32.random(in: 0...UInt32.max) % 100000)"
        let created = try box.berthNoun("network", ["create", name])
        #expect(created.status == .exited(0), "\(created.stderrText)")
        defer { _ = try? box.berthNoun("network", ["rm", name]) }
        _ = try box.berth([
            "run", "-d", "--name", "server", "-h", "server", "--network", name, box.image, "sh", "-c", Self.server,
        ])
        let address = try box.inspect("server", "{{.NetworkSettings.Networks.\(name).IPAddress}}")
        #expect(address.hasPrefix("10.9"), "\(address)")
        var answer = ""
        _ = try box.eventually {
            // busybox-static's wget crashes here; nc speaks the request.
            answer = try box.berth([
                "run", "--rm", "--network", name, box.image, "sh", "-c",
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 \(address) 80",
            ]).stdoutText
            return answer.hasSuffix("hello from server\n")
        }
        #expect(answer.hasSuffix("hello from server\n"))
        let inUse = try box.berthNoun("network", ["rm", name])
        #expect(inUse.status != .exited(0))
        #expect(inUse.stderrText.contains("active endpoints"))
        _ = try box.berth(["rm", "-f", "server"])
        #expect(try box.berthNoun("network", ["rm", name]).status == .exited(0))
        #expect(!(try box.berthNoun("network", ["ls", "--format", "{{.Name}}"]).stdoutText.contains(name)))
    }

    @Test func twoHundredBridgeCyclesLeaveNoInterfaceNamespaceLeaseRuleOrCgroup() throws {
        let linksBefore = try ChildProcess.run("/usr/sbin/ip", arguments: ["ip", "-o", "link"], environment: [])
            .stdoutText.split(separator: "\n").count
        var ids: [String] = []
        for i in 0..<15 {
            let out = try box.berth(["run", "-d", "-p", "80", box.image, "sh", "-c", "echo cycle \(i)"])
            let id = out.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            ids.append(id)
            #expect(try box.berth(["wait", id]).stdoutText == "0\n")
            #expect(try box.berth(["logs", id]).stdoutText == "cycle \(i)\n")
            #expect(try box.berth(["rm", id]).status == .exited(0))
        }
        // And the rest of 200 cycles as `run --rm` with a published port: every removal path DELs.
        for i in 15..<200 {
            let out = try box.berth(["run", "--rm", "-p", "80", box.image, "echo", "cycle \(i)"])
            #expect(out.stdoutText == "cycle \(i)\n", "\(out.stderrText)")
        }
        #expect(try box.berth(["ps", "-aq"]).stdoutText.isEmpty)
        #expect(try FileSystem.listSubdirectories("\(box.root)/containers").isEmpty)
        // host-local keeps a lease as a file named by the address: only its bookkeeping files stay.
        let leaseFiles = try ChildProcess.run(
            "/usr/bin/find", arguments: ["find", "\(box.root)/networks/ipam", "-type", "f", "-name", "*.*.*.*"],
            environment: []
        ).stdoutText
        #expect(leaseFiles.isEmpty, "\(leaseFiles)")
        let reservations = (try? FileSystem.readString("\(box.root)/networks/ports/ports.json")) ?? ""
        #expect(!reservations.contains("containerID"), "\(reservations)")
        let cniResults = (try? FileSystem.listDirectory("\(box.root)/networks/cni/results")) ?? []
        #expect(cniResults.isEmpty, "\(cniResults)")
        let cgroups = (try? FileSystem.listSubdirectories("/sys/fs/cgroup/pids/berth")) ?? []
        #expect(ids.allSatisfy { !cgroups.contains($0) })
        #expect(
            ((try? FileSystem.listSubdirectories("\(box.run)/runtime/berth")) ?? []).allSatisfy {
                $0 == "@seccomp-cache"
            })
        #expect(!(try FileSystem.readString("/proc/self/mountinfo")).contains("\(box.root)/containers/"))
        let links = try ChildProcess.run("/usr/sbin/ip", arguments: ["ip", "-o", "link"], environment: []).stdoutText
            .split(separator: "\n")
        // The bridge itself may have appeared with the first container; no veth stays.
        #expect(links.count <= linksBefore + 1)
        #expect(((try? FileSystem.listDirectory("\(box.run)/netns")) ?? []).isEmpty)
        let leases =
            (try? ChildProcess.run(
                "/usr/bin/grep", arguments: ["grep", "-rl", ids[0], "\(box.root)/networks"], environment: []
            ).stdoutText) ?? ""
        #expect(leases.isEmpty)
        let rules = try ChildProcess.run("/usr/sbin/iptables-save", arguments: ["iptables-save"], environment: [])
            .stdoutText
        #expect(ids.allSatisfy { !rules.contains(String($0.prefix(12))) })
        #expect(!(try FileSystem.readString("/proc/self/mountinfo")).contains("\(box.run)/netns/"))
    }
}
