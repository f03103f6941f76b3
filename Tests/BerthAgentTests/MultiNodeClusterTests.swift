#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Foundation
import Testing

/// Three nodes, each a network namespace with its own agent and engine (``ClusterTopology``): two
/// share a LAN (their pods' traffic takes a direct route), the third sits behind a router (VXLAN).
/// What a Kubernetes user counts on across nodes: pods reach pods by IP with their own addresses,
/// Services spread over every node's endpoints and answer on NodePorts and LoadBalancer addresses,
/// names resolve, NetworkPolicies hold across nodes, and a dead node's pods come back elsewhere. The
/// nodes join with the server's token, so all of it runs under the node authorizer.
@Suite(.serialized, .enabled(if: isRealRoot, "makes network namespaces and runs containers: needs real root"))
struct MultiNodeClusterTests {
    /// A pod that answers `/cgi-bin/ip` with the caller's address as it sees it, `/cgi-bin/name` with
    /// its own name, `/cgi-bin/count` with the length of what was posted, and `/big` with a megabyte.
    static let echoCommand = """
        mkdir -p /tmp/w/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /tmp/w/cgi-bin/ip \
        && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\ncat /etc/hostname\\n' > /tmp/w/cgi-bin/name \
        && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nhead -c $CONTENT_LENGTH | wc -c\\n' > /tmp/w/cgi-bin/count \
        && head -c 1000000 /dev/zero > /tmp/w/big \
        && chmod +x /tmp/w/cgi-bin/ip /tmp/w/cgi-bin/name /tmp/w/cgi-bin/count && exec httpd -f -p 8080 -h /tmp/w
        """

    @Test func podsServicesDNSAndPoliciesWorkAcrossNodesAndADeadNodesPodsMove() throws {
        let cluster = try ClusterTopology(lanOfNode: [0, 0, 1])
        defer { cluster.tearDown() }
        let nodes = cluster.nodes.map(\.name)
        #expect(try cluster.nodesReady(), "\(cluster.diagnostics())")
        let cidrs = try cluster.get("nodes", "{.items[*].spec.podCIDR}").split(separator: " ").map(String.init)
        #expect(Set(cidrs).count == 3 && cidrs.allSatisfy { $0.hasPrefix("10.42.") && $0.hasSuffix("/24") })

        // One echo pod on every node, and a client pod beside each.
        let manifest = """
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: echo}
            spec:
              selector: {matchLabels: {app: echo}}
              template:
                metadata: {labels: {app: echo}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: echo
                    image: \(cluster.image)
                    command: ["sh", "-c", \(Self.jsonString(Self.echoCommand))]
                    ports: [{name: http, containerPort: 8080}]
            ---
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: client}
            spec:
              selector: {matchLabels: {app: client}}
              template:
                metadata: {labels: {app: client}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - {name: client, image: \(cluster.image), command: ["sleep", "3600"]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: echo}
            spec:
              type: NodePort
              selector: {app: echo}
              ports: [{name: http, port: 80, targetPort: http}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: echo-headless}
            spec:
              clusterIP: None
              selector: {app: echo}
              ports: [{name: http, port: 8080}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: echo-lb}
            spec:
              type: LoadBalancer
              selector: {app: echo}
              ports: [{name: http, port: 8081, targetPort: 8080}]
            """
        let applied = try cluster.kubectl(["apply", "-f", "-"], input: manifest)
        try #require(applied.status.succeeded, "\(applied.stderrText)")
        func pods(_ app: String) throws -> [(name: String, node: String, ip: String)] {
            try cluster.get(
                "pods",
                "{range .items[?(@.metadata.labels.app==\"\(app)\")]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.phase}{\"\\n\"}{end}"
            ).split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ").map(String.init)
                return fields.count == 4 && fields[3] == "Running" ? (fields[0], fields[1], fields[2]) : nil
            }
        }
        #expect(
            try cluster.eventually(120) { try pods("echo").count == 3 && pods("client").count == 3 },
            "\(cluster.diagnostics())")
        let echo = try pods("echo"), clients = try pods("client")
        func on(_ list: [(name: String, node: String, ip: String)], _ node: String) throws -> (
            name: String, node: String, ip: String
        ) {
            try #require(list.first { $0.node == node })
        }
        func exec(_ pod: String, _ command: String, seconds: Int = 5) throws -> ChildProcess.Output {
            try cluster.kubectl(["exec", pod, "--", "sh", "-c", command])
        }
        /// The body's last line of `GET path` from `pod` (busybox's nc: its static wget crashes
        /// resolving), an IPv4-mapped address (httpd listens on IPv6) as plain IPv4.
        func fetch(_ pod: String, _ address: String, _ port: Int = 8080, _ path: String = "/cgi-bin/ip") throws
            -> String
        {
            Self.lastLine(
                try exec(pod, "printf 'GET \(path) HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(address) \(port)").stdoutText)
        }

        // Pod to pod by IP, each pair of nodes both ways (node 0–1 a direct route, 2 via VXLAN), and
        // the server sees the client's own address: no NAT between pod CIDRs.
        for from in nodes {
            for to in nodes where to != from {
                let client = try on(clients, from), server = try on(echo, to)
                var seen = ""
                #expect(
                    try cluster.eventually(20) {
                        seen = try fetch(client.name, server.ip)
                        return seen == client.ip
                    }, "\(from) → \(to): the server saw \(seen), the client is \(client.ip)")
            }
        }

        // Pods have the link's MTU (auto mode; host-gw traffic is not made smaller for the tunnel's
        // sake) while node 2 is reached through VXLAN, 50 bytes less: a megabyte each way over the
        // tunnel arrives whole, TCP's MSS clamped to the tunnel's MTU on the way (the mangle rule).
        let near = try on(clients, nodes[0]), far = try on(echo, nodes[2])
        #expect(Self.lastLine(try exec(near.name, "cat /sys/class/net/eth0/mtu").stdoutText) == "1500")
        let download = try exec(near.name, "printf 'GET /big HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(far.ip) 8080 | wc -c")
        #expect((Int(Self.lastLine(download.stdoutText)) ?? 0) > 1_000_000, "\(download.stderrText)")
        let upload = try exec(
            near.name,
            "(printf 'POST /cgi-bin/count HTTP/1.0\\r\\nContent-Length: 1000000\\r\\n\\r\\n'; head -c 1000000 /dev/zero) | nc -w 3 \(far.ip) 8080"
        )
        #expect(Self.lastLine(upload.stdoutText) == "1000000", "\(upload.stdoutText.suffix(300))")
        let mangle = try cluster.inNamespace(cluster.nodes[0].namespace, ["iptables", "-t", "mangle", "-S", "FORWARD"])
        #expect(mangle.stdoutText.contains("--clamp-mss-to-pmtu"), "\(mangle.stdoutText)")

        // The ClusterIP from a pod on every node, spread over the endpoints on all nodes, and its
        // name resolving to it there.
        let echoNames = Set(echo.map(\.name))
        let clusterIP = try cluster.get("service/echo", "{.spec.clusterIP}")
        for from in nodes {
            let client = try on(clients, from)
            var served = Set<String>()
            #expect(
                try cluster.eventually(30) {
                    for _ in 0..<8 { served.insert(try fetch(client.name, clusterIP, 80, "/cgi-bin/name")) }
                    return served == echoNames
                }, "from \(from): served by \(served), echo pods \(echoNames)")
            let lookup = try exec(client.name, "nslookup echo.default.svc.cluster.local").stdoutText
            #expect(lookup.contains("Address: \(clusterIP)") || lookup.contains("Address 1: \(clusterIP)"), "\(lookup)")
        }

        // DNS from inside a pod: the headless Service's pods and its SRV record.
        let client0 = try on(clients, nodes[0])
        let headless = try exec(client0.name, "nslookup echo-headless.default.svc.cluster.local").stdoutText
        for pod in echo { #expect(headless.contains(pod.ip), "\(headless)") }
        let srv = try exec(client0.name, "nslookup -type=SRV _http._tcp.echo-headless.default.svc.cluster.local")
            .stdoutText
        #expect(srv.contains("8080"), "\(srv)")

        // NodePort from the host, to a node on each LAN; the LoadBalancer's addresses are the nodes'.
        let nodePort = try cluster.get("service/echo", "{.spec.ports[0].nodePort}")
        for node in [cluster.nodes[0], cluster.nodes[2]] {
            var answer = ""
            #expect(
                try cluster.eventually(20) {
                    answer =
                        (try? cluster.run(["curl", "-s", "-m", "3", "http://\(node.address):\(nodePort)/cgi-bin/name"]))?
                        .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                    return echoNames.contains(answer)
                }, "NodePort on \(node.name): \(answer)")
        }
        #expect(
            try cluster.eventually(20) {
                Set(try cluster.get("service/echo-lb", "{.status.loadBalancer.ingress[*].ip}").split(separator: " "))
                    == Set(cluster.nodes.map { Substring($0.address) })
            })
        let ingress = cluster.nodes[1].address
        #expect(
            try cluster.eventually(20) {
                echoNames.contains(
                    (try cluster.run(["curl", "-s", "-m", "3", "http://\(ingress):8081/cgi-bin/name"])).stdoutText
                        .trimmingCharacters(in: .whitespacesAndNewlines))
            })

        // NetworkPolicy across nodes: no ingress to echo pods, then only from pods labelled role=friend.
        let target = try on(echo, nodes[2]), outsider = try on(clients, nodes[0])
        let denied = try cluster.kubectl(
            ["apply", "-f", "-"],
            input: """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: echo-closed}
                spec:
                  podSelector: {matchLabels: {app: echo}}
                  policyTypes: [Ingress]
                  ingress:
                  - from: [{podSelector: {matchLabels: {role: friend}}}]
                """)
        try #require(denied.status.succeeded, "\(denied.stderrText)")
        #expect(
            try cluster.eventually(20) {
                try fetch(outsider.name, target.ip).isEmpty
            }, "a pod without role=friend still reaches \(target.ip)")
        try cluster.kubectl(["label", "pod", outsider.name, "role=friend"])
        #expect(
            try cluster.eventually(20) { try fetch(outsider.name, target.ip) == outsider.ip })
        try cluster.kubectl(["delete", "networkpolicy", "echo-closed"])

        // A node dies (agent killed, link cut): its Deployment pod runs elsewhere and leaves the
        // Endpoints within 20 s of the cut; back, it keeps no copy of the pod it no longer owns.
        let deployment = try cluster.kubectl(
            ["apply", "-f", "-"],
            input: """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: mover}
                spec:
                  replicas: 2
                  selector: {matchLabels: {app: mover}}
                  template:
                    metadata: {labels: {app: mover}}
                    spec:
                      terminationGracePeriodSeconds: 1
                      nodeSelector: {}
                      containers:
                      - name: mover
                        image: \(cluster.image)
                        command: ["sh", "-c", \(Self.jsonString(Self.echoCommand))]
                        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: mover}
                spec:
                  selector: {app: mover}
                  ports: [{port: 80, targetPort: 8080}]
                """)
        try #require(deployment.status.succeeded, "\(deployment.stderrText)")
        #expect(try cluster.eventually(60) { try pods("mover").count == 2 }, "\(cluster.diagnostics())")
        let victim = try #require(try pods("mover").first)
        let deadIndex = try #require(cluster.nodes.firstIndex { $0.name == victim.node })
        cluster.stopAgent(deadIndex, signal: SIGKILL)
        try cluster.setLink(deadIndex, up: false)
        let cut = Date()
        var moved = false
        while Date().timeIntervalSince(cut) < 60 {
            let running = try pods("mover")
            let endpoints = try cluster.get("endpoints/mover", "{.subsets[*].addresses[*].ip}").split(separator: " ")
            if running.filter({ $0.node != victim.node }).count == 2 && !endpoints.contains(Substring(victim.ip))
                && endpoints.count == 2
            {
                moved = true
                break
            }
            usleep(200_000)
        }
        let seconds = Date().timeIntervalSince(cut)
        #expect(moved && seconds <= 20, "the dead node's pod moved after \(seconds) s: \(cluster.diagnostics())")
        print("node failure → pods Running elsewhere and Endpoints updated: \(String(format: "%.1f", seconds)) s")

        try cluster.setLink(deadIndex, up: true)
        try cluster.startAgent(deadIndex)
        #expect(
            try cluster.eventually(60) {
                try cluster.get("node/\(victim.node)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            }, "\(cluster.diagnostics())")
        // The returned node stops the pod that was replaced: no duplicate runs anywhere.
        let dead = cluster.nodes[deadIndex]
        #expect(
            try cluster.eventually(60) {
                let script =
                    cluster.cgroupRemountScript()
                    + " && '\(cluster.berth)' ps --format '{{.Names}}' --root '\(dead.directory)/engine'"
                let running = try cluster.run(["ip", "netns", "exec", dead.namespace, "sh", "-c", script]).stdoutText
                // The CRI names a pod's containers k8s_<container>_<pod>_<namespace>_…
                return !running.contains("_\(victim.name)_")
            }, "\(cluster.agentLog(deadIndex).suffix(3000))")
        // Two mover pods in the API, both Running — the Deployment's count, none twice.
        let all = {
            try cluster.get("pods", "{range .items[?(@.metadata.labels.app==\"mover\")]}{.metadata.name} {end}")
        }
        #expect(
            try cluster.eventually(30) { try pods("mover").count == 2 && all().split(separator: " ").count == 2 },
            "\((try? all()) ?? "") \(cluster.diagnostics())")
        // The nodes joined with the token and ran everything above as system:node:<name> under the
        // node authorizer: nothing they do was refused.
        #expect(cluster.auditRefusals().isEmpty, "\(cluster.auditRefusals().prefix(5))")
    }

    /// The last non-empty line of an HTTP answer, `[::ffff:a.b.c.d]` as `a.b.c.d`.
    static func lastLine(_ text: String) -> String {
        let line =
            text.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
        var value = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if value.hasPrefix("[::ffff:") && value.hasSuffix("]") { value = String(value.dropFirst(8).dropLast()) }
        return value
    }

    static func jsonString(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}
