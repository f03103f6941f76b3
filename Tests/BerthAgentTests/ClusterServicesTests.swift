import BerthOS
import BerthServiceProxy
import Foundation
import Testing

/// The agent's service proxy and cluster DNS on a one-node `berth server`: Services created with kubectl
/// reach their pods from the node and from pods, as kube-proxy's nftables mode routes them, and their
/// names resolve as CoreDNS answers them.
@Suite(.serialized, .enabled(if: isRealRoot && NFTables() != nil, "needs real root and nft(8)"), .berthServer)
struct ClusterServicesTests {
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

    @Test func aLoadBalancerServiceIsServedOnTheNodesAddress() throws {
        let box = try box
        _ = try box.kubectl([
            "create", "deployment", "lb", "--image=\(box.image)", "--", "sh", "-c",
            "mkdir -p /w && echo balanced > /w/index.html && exec httpd -f -p 8080 -h /w",
        ])
        let exposed = try box.kubectl([
            "expose", "deployment", "lb", "--port=8081", "--target-port=8080", "--type=LoadBalancer",
        ])
        #expect(exposed.status.succeeded, "\(exposed.stderrText)")
        let nodeIP = try box.get("node/\(box.nodeName)", "{.status.addresses[?(@.type==\"InternalIP\")].address}")
        // k3s's ServiceLB: the Ready nodes' addresses, shown as the EXTERNAL-IP.
        #expect(
            try box.eventually(20) { try box.get("service/lb", "{.status.loadBalancer.ingress[0].ip}") == nodeIP },
            "\((try? box.kubectl(["get", "service", "lb", "-o", "yaml"]).stdoutText) ?? "")")
        #expect(try box.kubectl(["get", "service", "lb"]).stdoutText.contains(nodeIP))
        #expect(
            try box.eventually(30) { fetch("http://\(nodeIP):8081/").body == "balanced\n" }, "\(box.diagnostics())")
        // No longer a LoadBalancer: the address goes.
        _ = try box.kubectl(["patch", "service", "lb", "-p", "{\"spec\":{\"type\":\"NodePort\"}}"])
        #expect(try box.eventually(20) { try box.get("service/lb", "{.status.loadBalancer.ingress}").isEmpty })
        _ = try box.kubectl(["delete", "service", "lb"])
        _ = try box.kubectl(["delete", "deployment", "lb"])
    }

    @Test func aTakenNodePortOrClusterIPGetsKubernetesError() throws {
        let box = try box
        #expect(
            try box.kubectl(["create", "service", "nodeport", "first", "--tcp=80:80", "--node-port=30123"]).status
                .succeeded)
        let second = try box.kubectl(["create", "service", "nodeport", "second", "--tcp=80:80", "--node-port=30123"])
        #expect(
            second.stderrText.contains(
                "Service \"second\" is invalid: spec.ports[0].nodePort: Invalid value: 30123: provided port is already allocated"
            ),
            "\(second.stderrText)")
        // The kube-dns address is taken by kube-system/kube-dns.
        let manifest = """
            apiVersion: v1
            kind: Service
            metadata: {name: third}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
            """
        let third = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(third.stderrText.contains("provided IP is already allocated"), "\(third.stderrText)")
        _ = try box.kubectl(["delete", "service", "first"])
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

    @Test func podsResolveServicesAndEachOtherThroughTheClusterDNS() throws {
        let box = try box
        // A headless Service whose pod names itself under it (hostname + subdomain), and a plain one.
        let manifest = """
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec:
              clusterIP: None
              selector: {app: db}
              ports: [{name: pg, port: 5432}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              selector: {app: web}
              ports: [{name: http, port: 80}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: db-0, labels: {app: db}}
            spec:
              hostname: db-0
              subdomain: db
              containers: [{name: db, image: "\(box.image)", command: [sleep, "3600"], ports: [{containerPort: 5432}]}]
            """
        let applied = try box.kubectl(["apply", "-f", "-"], input: manifest)
        #expect(applied.status.succeeded, "\(applied.stderrText)")
        #expect(try box.eventually { try box.get("pod/db-0", "{.status.phase}") == "Running" }, "\(box.diagnostics())")
        let webIP = try box.get("service/web", "{.spec.clusterIP}")
        let dbIP = try box.get("pod/db-0", "{.status.podIP}")
        #expect(
            try box.kubectl(["get", "service", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP}"])
                .stdoutText == "10.96.0.10")

        // The kubelet's resolv.conf.
        let resolvConf = try box.kubectl(["exec", "db-0", "--", "cat", "/etc/resolv.conf"]).stdoutText
        #expect(resolvConf.contains("nameserver 10.96.0.10"), "\(resolvConf)")
        #expect(resolvConf.contains("search default.svc.cluster.local svc.cluster.local cluster.local"))
        #expect(resolvConf.contains("options ndots:5"))

        func lookup(_ arguments: [String]) throws -> String {
            let result = try box.kubectl(["exec", "db-0", "--", "nslookup"] + arguments)
            return result.stdoutText + result.stderrText
        }
        // A Service by its full name and by the search list; the headless one by the pod's own name.
        #expect(
            try box.eventually(20) { try lookup(["web.default.svc.cluster.local"]).contains("Address: \(webIP)") },
            "\((try? lookup(["web.default.svc.cluster.local"])) ?? "") \(box.log().suffix(3000))")
        #expect(try lookup(["web"]).contains("Address: \(webIP)"))
        #expect(
            try box.eventually(20) { try lookup(["db-0.db.default.svc.cluster.local"]).contains("Address: \(dbIP)") })
        #expect(try lookup(["db.default.svc.cluster.local"]).contains("Address: \(dbIP)"))
        #expect(
            try lookup(["-type=srv", "_pg._tcp.db.default.svc.cluster.local"]).contains(
                "5432 db-0.db.default.svc.cluster.local"))
        let reverse = try lookup([webIP])
        #expect(reverse.contains("web.default.svc.cluster.local"), "\(reverse)")
        // A name that is not there: NXDOMAIN, at once.
        #expect(try lookup(["nothing.default.svc.cluster.local"]).contains("NXDOMAIN"))
        // From the node too, at the kube-dns address.
        let fromNode = try ChildProcess.run(
            "/bin/busybox", arguments: ["busybox", "nslookup", "web.default.svc.cluster.local", "10.96.0.10"],
            environment: [])
        #expect(fromNode.stdoutText.contains("Address: \(webIP)"), "\(fromNode.stdoutText)\(fromNode.stderrText)")
        _ = try box.kubectl(["delete", "pod", "db-0", "--grace-period=0", "--force"])
        _ = try box.kubectl(["delete", "service", "db", "web"])
    }

    @Test func networkPoliciesDenyThenAllowByLabel() throws {
        let box = try box
        let manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: guarded, labels: {app: guarded}}
            spec:
              containers:
              - name: web
                image: "\(box.image)"
                command: [sh, -c, "mkdir -p /w && echo guarded > /w/index.html && exec httpd -f -p 8080 -h /w"]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: friend, labels: {role: friend}}
            spec: {containers: [{name: c, image: "\(box.image)", command: [sleep, "3600"]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: stranger, labels: {role: stranger}}
            spec: {containers: [{name: c, image: "\(box.image)", command: [sleep, "3600"]}]}
            """
        #expect(try box.kubectl(["apply", "-f", "-"], input: manifest).status.succeeded)
        for name in ["guarded", "friend", "stranger"] {
            #expect(
                try box.eventually { try box.get("pod/\(name)", "{.status.phase}") == "Running" },
                "\(box.diagnostics())")
        }
        let target = try box.get("pod/guarded", "{.status.podIP}")
        func reaches(_ from: String) throws -> Bool {
            let result = try box.kubectl(["exec", from, "--", "sh", "-c", Self.httpGet(target, port: 8080, wait: 2)])
            return result.stdoutText.contains("\r\n\r\nguarded")
        }
        #expect(try box.eventually(20) { try reaches("friend") && reaches("stranger") })

        // Isolated: nothing comes in.
        let deny = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: deny-guarded}
            spec: {podSelector: {matchLabels: {app: guarded}}, policyTypes: [Ingress]}
            """
        #expect(try box.kubectl(["apply", "-f", "-"], input: deny).status.succeeded)
        #expect(try box.eventually(20) { try !reaches("friend") && !reaches("stranger") })

        // Allowed from pods labelled role=friend, on the web port.
        let allow = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: allow-friends}
            spec:
              podSelector: {matchLabels: {app: guarded}}
              ingress: [{from: [{podSelector: {matchLabels: {role: friend}}}], ports: [{protocol: TCP, port: 8080}]}]
            """
        #expect(try box.kubectl(["apply", "-f", "-"], input: allow).status.succeeded)
        #expect(try box.eventually(20) { try reaches("friend") }, "\((try? nft().listTable("berth-policy")) ?? "")")
        #expect(try !reaches("stranger"))

        // The policies gone: open again.
        _ = try box.kubectl(["delete", "networkpolicy", "deny-guarded", "allow-friends"])
        #expect(try box.eventually(20) { try reaches("stranger") })
        _ = try box.kubectl(["delete", "pod", "guarded", "friend", "stranger", "--grace-period=0", "--force"])
    }

    @Test func anEstablishedServiceConnectionOutlivesACrashOfItsAgent() throws {
        let box = try box
        // An echo server (busybox nc runs cat for each connection) behind a ClusterIP.
        _ = try box.kubectl([
            "create", "deployment", "echoer", "--image=\(box.image)", "--", "nc", "-ll", "-p", "7000", "-e", "cat",
        ])
        _ = try box.kubectl(["expose", "deployment", "echoer", "--port=7000"])
        #expect(
            try box.eventually {
                try box.kubectl([
                    "get", "endpointslices", "-l", "kubernetes.io/service-name=echoer", "-o",
                    "jsonpath={.items[*].endpoints[*].conditions.ready}",
                ]).stdoutText == "true"
            }, "\(box.diagnostics())")
        let clusterIP = try box.get("service/echoer", "{.spec.clusterIP}")
        var connection: Int32 = -1
        #expect(
            try box.eventually(20) {
                if connection >= 0 { close(connection) }
                connection = Self.connect(clusterIP, port: 7000)
                return connection >= 0 && Self.echo(connection, "before\n") == "before\n"
            })
        defer { close(connection) }
        // The server and its agent die at once (SIGKILL) and start again: the connection's translation
        // lives in conntrack, and the restarted proxy rebuilds its table in one transaction.
        try box.crashAndRestart()
        #expect(
            try box.eventually {
                try box.get("node/\(box.nodeName)", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
            })
        #expect(Self.echo(connection, "after\n") == "after\n")
        _ = try box.kubectl(["delete", "service", "echoer"])
        _ = try box.kubectl(["delete", "deployment", "echoer"])
    }

    /// A TCP connection from the node (a 3 s timeout on every read), or -1.
    static func connect(_ address: String, port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(port.bigEndian)
        socketAddress.sin_addr.s_addr = inet_addr(address)
        let result = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            close(fd)
            return -1
        }
        return fd
    }

    /// Sends `line` and reads until a newline comes back.
    static func echo(_ fd: Int32, _ line: String) -> String? {
        let bytes = Array(line.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !received.contains(10) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// An HTTP GET from inside a pod (busybox's nc: its static wget crashes resolving).
    func get(_ address: String) -> [String] {
        ["sh", "-c", Self.httpGet(address, port: 80, wait: 3)]
    }

    static func httpGet(_ address: String, port: Int, wait: Int) -> String {
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w \(wait) \(address) \(port)"
    }

    func nft() throws -> NFTables { try #require(NFTables()) }
}
