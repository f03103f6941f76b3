// Parse and serialize of API-sized JSON with BerthJSON, compiled on its own (scripts/bench-json.sh):
// a 3.4 KB pod (a kubectl-created Deployment's pod, with status) and a 1 MB PodList of 300 of them.
// Thread CPU time, so other work on the machine counts less.
import Glibc

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func pod(_ i: Int) -> JSON {
    let name = "web-7d9f8c6b5-p\(i)"
    let probe: JSON = ["failureThreshold": 3, "httpGet": ["path": "/healthz", "port": 8080, "scheme": "HTTP"],
                       "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1]
    let condition = { (type: String) -> JSON in
        ["lastProbeTime": nil, "lastTransitionTime": "2026-12-04T01:02:05Z", "status": "True", "type": .string(type)]
    }
    return [
        "apiVersion": "v1", "kind": "Pod",
        "metadata": [
            "annotations": ["kubectl.kubernetes.io/last-applied-configuration":
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"app\":\"web\"},\"name\":\"web-0\"}}\n"],
            "creationTimestamp": "2026-12-04T01:02:03Z", "generateName": "web-7d9f8c6b5-",
            "labels": ["app": "web", "pod-template-hash": "7d9f8c6b5", "tier": "frontend"],
            "name": .string(name), "namespace": "default", "resourceVersion": .string(String(123456 + i)),
            "ownerReferences": [["apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true, "kind": "ReplicaSet",
                                 "name": "web-7d9f8c6b5", "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"]],
            "uid": "7f3e2d1c-0b9a-8877-6655-443322110000",
        ],
        "spec": [
            "containers": [[
                "args": ["--port=8080", "--verbose"],
                "env": [["name": "MODE", "value": "production"],
                        ["name": "POD_NAME", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.name"]]]],
                "image": "registry.local:5000/web:1.2.3", "imagePullPolicy": "IfNotPresent", "livenessProbe": probe,
                "name": "web", "ports": [["containerPort": 8080, "name": "http", "protocol": "TCP"]], "readinessProbe": probe,
                "resources": ["limits": ["cpu": "500m", "memory": "256Mi"], "requests": ["cpu": "100m", "memory": "64Mi"]],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "volumeMounts": [["mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": true]],
            ]],
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "nodeName": "node-3", "priority": 0,
            "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": [:],
            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [["effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300],
                            ["effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300]],
            "volumes": [["name": "kube-api-access", "projected": ["defaultMode": 420, "sources": [
                ["serviceAccountToken": ["expirationSeconds": 3607, "path": "token"]],
                ["configMap": ["items": [["key": "ca.crt", "path": "ca.crt"]], "name": "kube-root-ca.crt"]]]]]],
        ],
        "status": [
            "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "containerStatuses": [["containerID": "berth://4f1e2d3c4b5a69788796a5b4c3d2e1f0", "image": "registry.local:5000/web:1.2.3",
                                   "imageID": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                   "lastState": [:], "name": "web", "ready": true, "restartCount": 0, "started": true,
                                   "state": ["running": ["startedAt": "2026-12-04T01:02:06Z"]]]],
            "hostIP": "10.88.0.3", "phase": "Running", "podIP": "10.244.3.17", "podIPs": [["ip": "10.244.3.17"]],
            "qosClass": "Burstable", "startTime": "2026-12-04T01:02:04Z",
        ],
    ]
}

func bench(_ name: String, _ value: JSON, _ rounds: Int) {
    let bytes = value.serialized()
    var parsed = try! JSON.parse(bytes)
    var start = cpuSeconds()
    for _ in 0..<rounds { parsed = try! JSON.parse(bytes) }
    let parse = (cpuSeconds() - start) / Double(rounds)
    var out: [UInt8] = []
    start = cpuSeconds()
    for _ in 0..<rounds { out = parsed.serialized() }
    let write = (cpuSeconds() - start) / Double(rounds)
    precondition(out == bytes)
    func rate(_ seconds: Double) -> String { "\(Int(Double(bytes.count) / seconds / 1e6)) MB/s" }
    print("\(name) (\(bytes.count) bytes): parse \(Int(parse * 1e6)) µs (\(rate(parse))), serialize \(Int(write * 1e6)) µs (\(rate(write)))")
}

bench("pod", pod(0), 20000)
bench("PodList of 300", ["apiVersion": "v1", "kind": "PodList", "metadata": ["resourceVersion": "1"], "items": .array((0..<300).map(pod))], 60)
