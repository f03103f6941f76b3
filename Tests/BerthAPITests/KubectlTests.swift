import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// The real kubectl 1.32 against an in-process server (SQLite).
    @Suite("kubectl", .serialized)
    struct KubectlTests {
        @Test func discoveryAndAuth() async throws {
            let s = try await TestServer()
            defer { Task { await s.stop() } }
            let res = try s.kubectl("api-resources")
            #expect(res.ok, "\(res.stderr)")
            for r in ["pods", "deployments", "endpointslices", "leases", "services", "configmaps", "secrets", "events"]
            {
                #expect(res.stdout.contains(r))
            }
            #expect(
                try s.kubectl("auth", "can-i", "create", "deployments").stdout.trimmingCharacters(
                    in: .whitespacesAndNewlines) == "yes")
            #expect(try s.kubectl("get", "ns").stdout.contains("kube-system"))
            // Anonymous requests are rejected; health endpoints stay open.
            let (code, body) = try s.curl("GET", "/api/v1/pods", token: "")
            #expect(code == 401 && body["reason"] == "Unauthorized")
            #expect(try s.curl("GET", "/api/v1/pods", token: "wrong").0 == 401)
            #expect(try s.curl("GET", "/healthz", token: "").0 == 200)
            #expect(try s.curl("GET", "/readyz").0 == 200)
            let metrics = try run(
                "/usr/bin/curl",
                ["-s", "--cacert", s.dir + "/pki/ca.crt", "-H", "Authorization: Bearer \(s.token)", s.url + "/metrics"])
            #expect(metrics.stdout.contains("apiserver_request_total"))
            await s.stop()
        }

        @Test func applyGetScaleLabelPatchEditDelete() async throws {
            let s = try await TestServer()
            let yaml = fixturesDir + "/web.yaml"
            var r = try s.kubectl("apply", "-f", yaml)
            #expect(
                r.ok && r.stdout.contains("deployment.apps/web created") && r.stdout.contains("service/web created"),
                "\(r.stderr)")
            // Tables with kubectl's usual columns.
            r = try s.kubectl("get", "deploy,svc", "-o", "wide")
            #expect(
                r.stdout.contains("UP-TO-DATE") && r.stdout.contains("SELECTOR") && r.stdout.contains("NodePort"),
                "\(r.stdout)")
            #expect(r.stdout.contains("80:30000/TCP") && r.stdout.contains("10.96.0."))
            r = try s.kubectl("get", "deploy", "web", "-o", "json")
            let obj = try JSON.parse(r.stdout)
            #expect(obj["spec"]["replicas"] == 2 && obj["spec"]["strategy"]["type"] == "RollingUpdate")
            #expect(obj["metadata"]["generation"] == 1)
            #expect(try s.kubectl("get", "deploy", "web", "-o", "yaml").stdout.contains("progressDeadlineSeconds: 600"))
            // Re-apply with a change: client-side strategic merge patch from last-applied.
            let changed = try String(contentsOfFile: yaml, encoding: .utf8).replacingOccurrences(
                of: "replicas: 2", with: "replicas: 3"
            )
            .replacingOccurrences(of: "value: prod", with: "value: dev")
            r = try s.kubectl("apply", "-f", "-", stdin: changed)
            #expect(
                r.stdout.contains("deployment.apps/web configured") && r.stdout.contains("service/web unchanged"),
                "\(r.stdout) \(r.stderr)")
            let after = try JSON.parse(try s.kubectl("get", "deploy", "web", "-o", "json").stdout)
            #expect(after["spec"]["replicas"] == 3 && after["metadata"]["generation"] == 2)
            #expect(after["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "dev")
            #expect(
                try s.kubectl("describe", "deploy", "web").stdout.contains(
                    "RollingUpdateStrategy:  25% max unavailable, 25% max surge"))
            #expect(try s.kubectl("scale", "deploy", "web", "--replicas=5").ok)
            #expect(try s.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5")
            #expect(try s.kubectl("label", "deploy", "web", "tier=frontend").ok)
            #expect(try s.kubectl("annotate", "deploy", "web", "note=hello").ok)
            #expect(
                try s.kubectl("get", "deploy", "-l", "tier=frontend", "-o", "name").stdout.contains(
                    "deployment.apps/web"))
            // Empty because nothing matches, not because the selector was refused (kubectl sends it with '+').
            let notin = try s.kubectl("get", "deploy", "-l", "tier notin (frontend)", "-o", "name")
            #expect(notin.ok && notin.stdout.isEmpty, "\(notin.stderr)")
            #expect(
                try s.kubectl(
                    "patch", "deploy", "web", "-p",
                    #"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#
                ).ok)
            #expect(
                try s.kubectl(
                    "patch", "deploy", "web", "--type=json", "-p",
                    #"[{"op":"replace","path":"/spec/replicas","value":4}]"#
                ).ok)
            #expect(
                try s.kubectl("patch", "deploy", "web", "--type=merge", "-p", #"{"metadata":{"labels":{"x":"y"}}}"#).ok)
            let patched = try JSON.parse(try s.kubectl("get", "deploy", "web", "-o", "json").stdout)
            #expect(patched["spec"]["replicas"] == 4)
            #expect(patched["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28")
            #expect(
                patched["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "MODE",
                "strategic merge kept env")
            #expect(patched["metadata"]["labels"]["x"] == "y" && patched["metadata"]["annotations"]["note"] == "hello")
            // kubectl edit with EDITOR set to a script.
            let editor = s.dir + "/editor.sh"
            try "#!/bin/sh\nsed -i 's/replicas: [0-9]*/replicas: 7/' \"$1\"\n".write(
                toFile: editor, atomically: true, encoding: .utf8)
            chmod(editor, 0o755)
            r = try s.kubectl("edit", "deploy", "web", env: ["EDITOR": editor, "KUBE_EDITOR": editor])
            #expect(r.ok, "\(r.stderr)")
            #expect(try s.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "7")
            // Server-side apply with managedFields.
            r = try s.kubectl("apply", "--server-side", "--force-conflicts", "-f", yaml)
            #expect(r.ok && r.stdout.contains("serverside-applied"), "\(r.stderr)")
            r = try s.kubectl("get", "deploy", "web", "-o", "json", "--show-managed-fields")
            let ssa = try JSON.parse(r.stdout)
            #expect(
                (ssa["metadata"]["managedFields"].array ?? []).contains {
                    $0["manager"] == "kubectl" && $0["operation"] == "Apply"
                })
            #expect(ssa["spec"]["replicas"] == 2)
            // explain uses the OpenAPI v3 document.
            r = try s.kubectl("explain", "deployment.spec")
            #expect(r.ok && r.stdout.contains("replicas") && r.stdout.contains("template"), "\(r.stderr)")
            r = try s.kubectl("delete", "-f", yaml)
            #expect(r.ok && r.stdout.contains("deployment.apps \"web\" deleted"), "\(r.stderr)")
            #expect(try s.kubectl("get", "deploy", "-o", "name").stdout.isEmpty)
            await s.stop()
        }

        @Test func getWatchSeesChanges() async throws {
            let s = try await TestServer()
            // (kubectl create <kind> sends protobuf, which Berth does not decode; apply sends JSON.)
            let c1 = try s.kubectl(
                "apply", "-f", "-",
                stdin: "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"w1\"}}")
            #expect(c1.ok, "\(c1.stderr)")
            // kubectl get -w in the background; the test waits for its first line, then changes the object.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/kubectl")
            p.arguments = ["--kubeconfig", s.kubeconfig, "get", "configmaps", "-w", "--request-timeout=20s"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let lines = LineReader(out.fileHandleForReading)
            let header = lines.next(timeout: 15)
            #expect(header?.contains("NAME") == true)
            var sawW1 = false
            while let l = lines.next(timeout: 15) { if l.hasPrefix("w1") { sawW1 = true; break } }
            #expect(sawW1)
            #expect(
                try s.kubectl(
                    "apply", "-f", "-",
                    stdin: "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"w2\"}}"
                ).ok)
            var sawW2 = false
            while let l = lines.next(timeout: 15) { if l.hasPrefix("w2") { sawW2 = true; break } }
            #expect(sawW2)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            await s.stop()
        }
    }
}

/// Reads lines from a pipe on a background thread, with a timeout per line.
final class LineReader: @unchecked Sendable {
    private let cond = NSCondition()
    private var lines: [String] = []
    private var eof = false
    init(_ h: FileHandle) {
        Thread.detachNewThread { [self] in
            var buf = Data()
            while true {
                let d = h.availableData
                if d.isEmpty { break }
                buf.append(d)
                while let nl = buf.firstIndex(of: 0x0a) {
                    let line = String(decoding: buf[buf.startIndex..<nl], as: UTF8.self)
                    buf.removeSubrange(buf.startIndex...nl)
                    cond.lock(); lines.append(line); cond.signal(); cond.unlock()
                }
            }
            cond.lock(); eof = true; cond.signal(); cond.unlock()
        }
    }
    func next(timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while lines.isEmpty && !eof { if !cond.wait(until: deadline) { return nil } }
        return lines.isEmpty ? nil : lines.removeFirst()
    }
}

extension APITests {
    /// The same server on etcd (a private etcd on loopback): kubectl apply/get/patch/delete and a watch.
    @Suite("kubectl on etcd", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")))
    struct KubectlEtcdTests {
        @Test func applyGetPatchWatchDeleteOnEtcd() async throws {
            let etcd = try LocalEtcd()
            try await etcd.start()
            defer { etcd.stop() }
            let s = try await TestServer(datastore: .etcd, etcd: etcd.endpoints)
            var r = try s.kubectl("apply", "-f", fixturesDir + "/web.yaml")
            #expect(r.ok, "\(r.stderr)")
            r = try s.kubectl("get", "deploy,svc")
            #expect(r.stdout.contains("web") && r.stdout.contains("NodePort"))
            #expect(try s.kubectl("scale", "deploy", "web", "--replicas=4").ok)
            #expect(try s.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "4")
            let (_, list) = try s.curl("GET", "/apis/apps/v1/namespaces/default/deployments")
            let rv = list["metadata"]["resourceVersion"].string ?? "0"
            #expect(try s.kubectl("label", "deploy", "web", "x=y").ok)
            let w = try run(
                "/usr/bin/curl",
                [
                    "-s", "-N", "--max-time", "3", "--cacert", s.dir + "/pki/ca.crt", "-H",
                    "Authorization: Bearer \(s.token)",
                    s.url + "/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=\(rv)",
                ])
            let first = try JSON.parse(String(w.stdout.split(separator: "\n").first ?? ""))
            #expect(first["type"] == "MODIFIED" && first["object"]["metadata"]["labels"]["x"] == "y")
            #expect(try s.kubectl("delete", "-f", fixturesDir + "/web.yaml").ok)
            #expect(try s.kubectl("get", "deploy", "-o", "name").stdout.isEmpty)
            await s.stop()
        }
    }
}
