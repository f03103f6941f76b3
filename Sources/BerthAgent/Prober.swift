#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthKube
import BerthOS
import Foundation

/// The kubelet's prober: for each running container with probes, a loop per probe (startup, readiness,
/// liveness) on its own timings — initialDelaySeconds, periodSeconds (10), timeoutSeconds (1),
/// successThreshold (1), failureThreshold (3). exec runs through the CRI's ExecSync; httpGet (2xx and
/// 3xx succeed), tcpSocket and grpc (the health protocol's Check) connect to the pod's address from the
/// node. Readiness decides the
/// container's `ready`; a liveness or startup failure kills the container, which its restartPolicy
/// then restarts; liveness and readiness wait for the startup probe.
actor Prober {
    enum Kind: String { case startup, readiness, liveness }

    struct Target: Sendable {
        var podKey: String
        var podUID: String
        var containerName: String
        var containerID: String
        var podIP: String
        var probes: [(Kind, CoreV1.Probe)]
        var gracePeriod: Int64
    }

    /// Results by container ID: started (startup probe passed, or none), ready (readiness passed, or none).
    private var started: [String: Bool] = [:]
    private var ready: [String: Bool] = [:]
    private var loops: [String: [Task<Void, Never>]] = [:]
    private var byPod: [String: Set<String>] = [:]

    /// Whether the container has passed its startup probe (true without one).
    func isStarted(_ containerID: String) -> Bool { started[containerID] ?? true }
    /// Whether the container is ready (false until its readiness probe passed; true without one).
    func isReady(_ containerID: String) -> Bool { ready[containerID] ?? true }

    /// Starts the loops of a container seen running for the first time.
    func ensure(_ target: Target, agent: NodeAgent) {
        guard loops[target.containerID] == nil, !target.probes.isEmpty else { return }
        let kinds = Set(target.probes.map(\.0))
        if kinds.contains(.startup) { started[target.containerID] = false }
        if kinds.contains(.readiness) { ready[target.containerID] = false }
        byPod[target.podUID, default: []].insert(target.containerID)
        loops[target.containerID] = target.probes.map { kind, probe in
            Task { await self.loop(kind, probe, target, agent: agent) }
        }
    }

    /// Stops every loop of the pod's containers but `keep` (a pod gone, or containers replaced).
    func stop(podUID: String, keeping keep: Set<String> = []) {
        for id in byPod[podUID] ?? [] where !keep.contains(id) {
            for task in loops[id] ?? [] { task.cancel() }
            loops[id] = nil
            started[id] = nil
            ready[id] = nil
        }
        byPod[podUID] = keep.isEmpty ? nil : (byPod[podUID] ?? []).intersection(keep)
    }

    private func set(_ kind: Kind, _ id: String, _ value: Bool) -> Bool {
        switch kind {
        case .startup:
            let changed = started[id] != value
            started[id] = value
            return changed
        case .readiness:
            let changed = ready[id] != value
            ready[id] = value
            return changed
        case .liveness: return false
        }
    }

    private func loop(_ kind: Kind, _ probe: CoreV1.Probe, _ target: Target, agent: NodeAgent) async {
        let period = Duration.seconds(Int64(max(1, probe.periodSeconds ?? 10)))
        let timeout = Int64(max(1, probe.timeoutSeconds ?? 1))
        let successes = Int(max(1, probe.successThreshold ?? 1))
        let failures = Int(max(1, probe.failureThreshold ?? 3))
        try? await Task.sleep(for: .seconds(Int64(max(0, probe.initialDelaySeconds ?? 0))))
        var successRun = 0
        var failureRun = 0
        while !Task.isCancelled {
            // Liveness and readiness begin once the startup probe passed.
            if kind != .startup && !isStarted(target.containerID) {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            let (ok, output) = await Self.run(probe, target: target, timeout: timeout, agent: agent)
            if Task.isCancelled { return }
            if ok {
                successRun += 1
                failureRun = 0
                if successRun >= successes, set(kind, target.containerID, true) { await agent.queue.add(target.podKey) }
                if kind == .startup && successRun >= successes { return }
            } else {
                failureRun += 1
                successRun = 0
                await agent.probeFailed(kind, target: target, output: output)
                if failureRun >= failures {
                    if kind == .readiness {
                        if set(kind, target.containerID, false) { await agent.queue.add(target.podKey) }
                    } else {
                        await agent.restartUnhealthy(kind, target: target, probe: probe)
                        return
                    }
                }
            }
            try? await Task.sleep(for: period)
        }
    }

    /// One probe: whether it succeeded and what it said.
    static func run(_ probe: CoreV1.Probe, target: Target, timeout: Int64, agent: NodeAgent) async -> (Bool, String) {
        if let exec = probe.exec {
            var request = Runtime_V1_ExecSyncRequest()
            request.containerID = target.containerID
            request.cmd = exec.command
            request.timeout = timeout
            do {
                let result = try await agent.cri.runtime.execSync(request)
                let output = String(decoding: result.stdout + result.stderr, as: UTF8.self)
                return (result.exitCode == 0, output)
            } catch {
                return (false, NodeAgent.message(error))
            }
        }
        if agent.configuration.hollow {
            // A hollow node's pod address leads nowhere; its fake containers are healthy.
            return (true, "")
        }
        if let http = probe.httpGet {
            guard let port = port(http.port, target: target, agent: agent) else {
                return (false, "port \(http.port) is not a port of the container")
            }
            let host = (http.host ?? "").isEmpty ? target.podIP : http.host!
            let path = (http.path ?? "").isEmpty ? "/" : http.path!
            let headers = http.httpHeaders.map { ($0.name, $0.value) }
            return await BlockingThread.run(name: "probe-http") {
                ProbeConnection.httpGet(host: host, port: port, path: path, headers: headers, timeout: timeout)
            }
        }
        if let tcp = probe.tcpSocket {
            guard let port = port(tcp.port, target: target, agent: agent) else {
                return (false, "port \(tcp.port) is not a port of the container")
            }
            let host = (tcp.host ?? "").isEmpty ? target.podIP : tcp.host!
            return await BlockingThread.run(name: "probe-tcp") {
                ProbeConnection.connect(host: host, port: port, timeout: timeout).map { close($0) } != nil
                    ? (true, "") : (false, "dial tcp \(host):\(port): connection refused or timed out")
            }
        }
        if let grpc = probe.grpc {
            // No host field: the kubelet always asks the pod's own address.
            return await GRPCHealthProbe.check(
                host: target.podIP, port: Int(grpc.port), service: grpc.service ?? "", timeout: timeout)
        }
        return (false, "the probe names no handler (exec, httpGet, tcpSocket or grpc)")
    }

    /// A port by number, or by the name of one of the container's ports.
    static func port(_ value: IntOrString, target: Target, agent: NodeAgent) -> UInt16? {
        switch value {
        case .int(let number): return number > 0 && number < 65536 ? UInt16(number) : nil
        case .string(let name):
            if let number = UInt16(name) { return number }
            let pod = agent.pod(target.podKey)
            let container = pod?.spec.containers.first { $0.name == target.containerName }
            return container?.ports.first { $0.name == name }.map { UInt16(clamping: $0.containerPort) }
        }
    }
}

/// The sockets a probe opens from the node: a TCP connect with a deadline, and an HTTP/1.1 GET on it.
enum ProbeConnection {
    /// A connected IPv4 TCP socket, nil when it cannot connect within `timeout` seconds.
    static func connect(host: String, port: UInt16, timeout: Int64) -> Int32? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            guard errno == EINPROGRESS else {
                close(fd)
                return nil
            }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            // At least a second (a timeout of 0 would fail every connect still in progress); at most a day.
            guard poll(&entry, 1, Int32(clamping: min(max(timeout, 1), 86_400) * 1000)) == 1,
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0
            else {
                close(fd)
                return nil
            }
        }
        return fd
    }

    /// GET `path`: success for a 2xx or 3xx status within `timeout` seconds (redirects not followed).
    static func httpGet(host: String, port: UInt16, path: String, headers: [(String, String)], timeout: Int64)
        -> (Bool, String)
    {
        guard let fd = connect(host: host, port: port, timeout: timeout) else {
            return (
                false, "Get \"http://\(host):\(port)\(path)\": dial tcp \(host):\(port): connect: connection refused"
            )
        }
        defer { close(fd) }
        var request =
            "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        var sent = 0
        let deadline = Timestamp.monotonic() + Double(timeout)
        while sent < bytes.count {
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, Int32(max(1, (deadline - Timestamp.monotonic()) * 1000))) == 1 else {
                return (false, "timeout sending the request")
            }
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return (false, "the connection closed") }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !response.contains(10) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - Timestamp.monotonic()
            guard left > 0, poll(&entry, 1, Int32(left * 1000) + 1) == 1 else {
                return (false, "Get \"http://\(host):\(port)\(path)\": context deadline exceeded")
            }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let line = String(decoding: response.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, let status = Int(fields[1]) else { return (false, "malformed HTTP response") }
        return ((200..<400).contains(status), "HTTP probe failed with statuscode: \(status)")
    }
}
