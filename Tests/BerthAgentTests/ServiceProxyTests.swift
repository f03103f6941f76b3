import BerthOS
import BerthServiceProxy
import Foundation
import Testing

/// The agent's service proxy on a one-node `berth server`: Services created with kubectl reach their
/// pods from the node and from pods, as kube-proxy's nftables mode routes them.
@Suite(.serialized, .enabled(if: isRealRoot && NFTables() != nil, "needs real root and nft(8)"), .berthServer)
struct ServiceProxyTests {
    var box: ServerBox { get throws { try #require(ServerBox.current) } }

    /// `curl` from the node: the body, or nil with curl's exit code (7: refused, 28: timed out).
    func fetch(_ url: String, seconds: Int = 3) -> (body: String?, code: Int32) {
        guard
            let result = try? ChildProcess.run(
                "/usr/bin/curl", arguments: ["curl", "-s", "-m", String(seconds), url], environment: [])
        else { return (nil, -1) }
        if case .exited(let code) = result.status, code != 0 { return (nil, code) }
        return (result.stdoutText, 0)
    }

    @Test func servicesReachReadyPodsFromTheNodeAndFromPods() throws {
        let box = try box
        // Each replica answers with its own name.
        let created = try box.kubectl([
            "create", "deployment", "echo", "--image=\(box.image)", "--replicas=2", "--", "sh", "-c",
            "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 8080 -h /w",
        ])
        #expect(created.status.succeeded, "\(created.stderrText)")
        let exposed = try box.kubectl([
            "expose", "deployment", "echo", "--port=80", "--target-port=8080", "--type=NodePort",
        ])
        #expect(exposed.status.succeeded, "\(exposed.stderrText)")
        #expect(
            try box.eventually {
                try box.kubectl([
                    "get", "endpointslices", "-l", "kubernetes.io/service-name=echo", "-o",
                    "jsonpath={.items[*].endpoints[*].conditions.ready}",
                ]).stdoutText == "true true"
            }, "\(box.diagnostics())")
        let clusterIP = try box.get("service/echo", "{.spec.clusterIP}")
        let nodePort = try box.get("service/echo", "{.spec.ports[0].nodePort}")
        let nodeIP = try box.get("node/\(box.nodeName)", "{.status.addresses[?(@.type==\"InternalIP\")].address}")

        // From the node: the cluster IP spreads requests over both replicas.
        #expect(
            try box.eventually(20) { fetch("http://\(clusterIP)/").body?.hasPrefix("echo-") == true },
            "\(box.log().suffix(4000))")
        var answered: Set<String> = []
        for _ in 0..<40 where answered.count < 2 {
            if let body = fetch("http://\(clusterIP)/").body { answered.insert(body) }
        }
        #expect(answered.count == 2, "\(answered)")
        // The node port, on the node's address.
        #expect(fetch("http://\(nodeIP):\(nodePort)/").body?.hasPrefix("echo-") == true)

        // From a pod, and from a replica through its own Service (hairpin: it may reach itself).
        _ = try box.kubectl(["run", "client", "--image=\(box.image)", "--", "sleep", "3600"])
        #expect(
            try box.eventually { try box.get("pod/client", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        let fromPod = try box.kubectl(["exec", "client", "--"] + get(clusterIP))
        #expect(fromPod.stdoutText.contains("\r\n\r\necho-"), "\(fromPod.stdoutText) \(fromPod.stderrText)")
        let replica = try box.kubectl(["get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[0].metadata.name}"])
            .stdoutText
        for _ in 0..<6 {
            let hairpin = try box.kubectl(["exec", replica, "--"] + get(clusterIP))
            #expect(hairpin.stdoutText.contains("\r\n\r\necho-"), "\(hairpin.stdoutText) \(hairpin.stderrText)")
        }

        // ClientIP affinity: one client, one replica.
        _ = try box.kubectl(["patch", "service", "echo", "-p", "{\"spec\":{\"sessionAffinity\":\"ClientIP\"}}"])
        #expect(
            try box.eventually(20) {
                (try? nft().listTable("berth-proxy"))?.contains("affinity-") == true
            })
        let first = fetch("http://\(clusterIP)/").body
        for _ in 0..<10 { #expect(fetch("http://\(clusterIP)/").body == first) }

        // Deleted: its address leaves the rules.
        _ = try box.kubectl(["delete", "service", "echo"])
        #expect(
            try box.eventually(20) {
                (try? nft().listTable("berth-proxy"))?.contains(clusterIP) == false
            })
        _ = try box.kubectl(["delete", "deployment", "echo"])
        _ = try box.kubectl(["delete", "pod", "client", "--grace-period=0", "--force"])
    }

    @Test func aServiceWithoutReadyEndpointsRefusesAtOnce() throws {
        let box = try box
        let created = try box.kubectl(["create", "service", "clusterip", "nothing", "--tcp=80:8080"])
        #expect(created.status.succeeded, "\(created.stderrText)")
        let clusterIP = try box.get("service/nothing", "{.spec.clusterIP}")
        // Refused (curl's 7) rather than left to time out (28): the proxy rejects it.
        #expect(try box.eventually(20) { fetch("http://\(clusterIP)/").code == 7 }, "\(box.log().suffix(4000))")
        // Another port of a cluster IP is refused too.
        #expect(fetch("http://\(clusterIP):81/").code == 7)
        _ = try box.kubectl(["delete", "service", "nothing"])
    }

    /// An HTTP GET from inside a pod (busybox's nc: its static wget crashes resolving).
    func get(_ address: String) -> [String] {
        ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(address) 80"]
    }

    func nft() throws -> NFTables { try #require(NFTables()) }
}
