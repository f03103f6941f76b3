import ArgumentParser
import BerthCRI
import BerthCRIProtocol
import Foundation
import GRPCCore

/// `berth bench cri`: the kubelet's three calls to start a pod — RunPodSandbox, CreateContainer,
/// StartContainer — timed against any CRI runtime's socket (Berth's `berth engine --cri-socket`,
/// containerd's), one pod after another (or `--parallel K` at a time). The image is pulled through the
/// ImageService first, untimed, and the container runs it by the reference the pull returned, as the
/// kubelet does. Every container and sandbox made is stopped and removed afterwards, whatever failed.
/// Prints p50/p99/mean per call and for the three together, then one JSON line for scripts
/// (scripts/bench-cri.py runs it against Berth and containerd side by side: issue 12).
struct CRIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cri",
        abstract: "Time RunPodSandbox + CreateContainer + StartContainer against a CRI runtime's socket.")

    @Option(help: "The runtime's CRI socket: unix:///PATH or a path.") var endpoint: String
    @Option(help: "The image the containers run (pulled through the CRI before timing).") var image: String
    @Option(help: "Pods timed.") var count = 50
    @Option(help: "Pods started at a time (1: one after the other, the figure that matters).") var parallel = 1
    @Option(help: "Pods started first, untimed (removed with the others at the end).") var warmup = 2
    @Option(help: "The container's command, split at spaces.") var command = "sleep 3600"
    @Option(help: "Each pod's cgroup parent is PREFIX/<pod> (empty: none given, the runtime's default).")
    var cgroupParent = ""
    @Option(help: "The pods' log directories go under this one (default a temporary one, removed afterwards).")
    var logRoot: String?
    @Option(help: "The runtime's name in the report (default what Version answers).") var label: String?
    @Flag(help: "Pods on the host's network (no network namespace, no pod network): what networking costs.")
    var hostNetwork = false
    @Flag(help: "Print only the JSON line.") var json = false

    func validate() throws {
        guard count > 0, parallel > 0, warmup >= 0 else {
            throw ValidationError("--count and --parallel must be positive, --warmup not negative")
        }
    }

    func run() async throws {
        let client = try CRIClient(endpoint: endpoint)
        let logs = logRoot ?? NSTemporaryDirectory() + "berth-bench-cri-" + UUID().uuidString.prefix(8)
        let madeLogs = !FileManager.default.fileExists(atPath: logs)
        let ledger = CRIBenchLedger()
        var failure: (any Error)?
        var report = ""
        do {
            let version = try await client.runtime.version(Runtime_V1_VersionRequest())
            let name = label ?? "\(version.runtimeName) \(version.runtimeVersion)"
            var pull = Runtime_V1_PullImageRequest()
            pull.image.image = image
            let reference = try await client.images.pullImage(pull).imageRef
            let pods = CRIBenchPods(
                client: client, image: image, imageReference: reference.isEmpty ? image : reference,
                command: command.split(separator: " ").map(String.init), cgroupParent: cgroupParent,
                hostNetwork: hostNetwork, logs: logs,
                run: String(UUID().uuidString.prefix(8)).lowercased(), ledger: ledger)
            for index in 0..<warmup { _ = try await pods.start(index: -1 - index) }
            let started = ContinuousClock.now
            let samples = try await pods.start(count: count, parallel: parallel)
            let wall = (ContinuousClock.now - started).seconds
            report = CRIBenchReport(runtime: name, samples: samples, parallel: parallel, wall: wall).text(json: json)
        } catch {
            failure = error
        }
        let teardown = ContinuousClock.now
        let left = await ledger.removeAll(client)
        let teardownSeconds = (ContinuousClock.now - teardown).seconds
        await client.close()
        if madeLogs { try? FileManager.default.removeItem(atPath: logs) }
        if !left.isEmpty {
            FileHandle.standardError.write(Data("not removed: \(left.joined(separator: "; "))\n".utf8))
        }
        if let failure { throw failure }
        print(report)
        if !json {
            print(
                String(
                    format: "teardown (StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox): %.2f s",
                    teardownSeconds))
        }
        if !left.isEmpty { throw ExitCode(1) }
    }
}

/// One pod's times: the three calls, and from the first call's start to the last's answer.
struct CRIBenchSample: Sendable {
    var runPodSandbox: Duration
    var createContainer: Duration
    var startContainer: Duration
    var total: Duration
}

/// What a run made, for the teardown whatever failed.
actor CRIBenchLedger {
    private var sandboxes: [String] = []
    private var containers: [String] = []

    func made(sandbox: String?, container: String?) {
        if let sandbox { sandboxes.append(sandbox) }
        if let container { containers.append(container) }
    }

    /// Stops and removes every container, then every sandbox; returns what could not be removed. Each
    /// call is tried three times: a call can fail with `unavailable` when a connection is replaced.
    func removeAll(_ client: CRIClient) async -> [String] {
        var left: [String] = []
        for id in containers {
            var stop = Runtime_V1_StopContainerRequest()
            stop.containerID = id
            stop.timeout = 0
            var remove = Runtime_V1_RemoveContainerRequest()
            remove.containerID = id
            _ = await Self.retrying { try await client.runtime.stopContainer(stop) }
            if let error = await Self.retrying({ try await client.runtime.removeContainer(remove) }) {
                left.append("container \(id): \(error)")
            }
        }
        for id in sandboxes {
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = await Self.retrying { try await client.runtime.stopPodSandbox(stop) }
            if let error = await Self.retrying({ try await client.runtime.removePodSandbox(remove) }) {
                left.append("sandbox \(id): \(error)")
            }
        }
        containers = []
        sandboxes = []
        return left
    }

    /// The call's last error after three tries, nil once one succeeded.
    private static func retrying<T>(_ call: () async throws -> T) async -> (any Error)? {
        var last: (any Error)?
        for attempt in 0..<3 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200)) }
            do {
                _ = try await call()
                return nil
            } catch {
                last = error
            }
        }
        return last
    }
}

/// Starts pods as the kubelet would: a sandbox of unique metadata, then one container in it.
struct CRIBenchPods: Sendable {
    let client: CRIClient
    let image: String
    let imageReference: String
    let command: [String]
    let cgroupParent: String
    let hostNetwork: Bool
    let logs: String
    let run: String
    let ledger: CRIBenchLedger

    func start(count: Int, parallel: Int) async throws -> [CRIBenchSample] {
        if parallel == 1 {
            var samples: [CRIBenchSample] = []
            for index in 0..<count { samples.append(try await start(index: index)) }
            return samples
        }
        return try await withThrowingTaskGroup(of: CRIBenchSample.self) { group in
            var next = 0
            var samples: [CRIBenchSample] = []
            while next < min(parallel, count) {
                let index = next
                group.addTask { try await start(index: index) }
                next += 1
            }
            while let sample = try await group.next() {
                samples.append(sample)
                if next < count {
                    let index = next
                    group.addTask { try await start(index: index) }
                    next += 1
                }
            }
            return samples
        }
    }

    /// One pod (a negative index is a warm-up pod).
    func start(index: Int) async throws -> CRIBenchSample {
        let name = index < 0 ? "warmup\(-index)" : "pod\(index)"
        var sandbox = Runtime_V1_PodSandboxConfig()
        sandbox.metadata.name = "bench-\(name)"
        sandbox.metadata.namespace = "bench-cri"
        sandbox.metadata.uid = "\(run)-\(name)"
        sandbox.metadata.attempt = 0
        // The kubelet gives a pod on the host's network no hostname of its own (runc refuses one there).
        if !hostNetwork { sandbox.hostname = "bench-\(name)" }
        sandbox.logDirectory = "\(logs)/bench-cri_bench-\(name)_\(run)-\(name)"
        sandbox.labels = ["berth.bench": run]
        if !cgroupParent.isEmpty { sandbox.linux.cgroupParent = "\(cgroupParent)/\(run)-\(name)" }
        // The kubelet's namespaces for a pod without shareProcessNamespace: one PID namespace per container.
        sandbox.linux.securityContext.namespaceOptions.pid = .container
        if hostNetwork { sandbox.linux.securityContext.namespaceOptions.network = .node }
        // The kubelet makes the pod's log directory before it asks for the sandbox.
        try FileManager.default.createDirectory(atPath: sandbox.logDirectory, withIntermediateDirectories: true)

        var container = Runtime_V1_ContainerConfig()
        container.metadata.name = "c"
        container.image.image = imageReference
        container.image.userSpecifiedImage = image
        container.command = command
        container.logPath = "c/0.log"
        container.labels = ["berth.bench": run]

        var sandboxID: String?
        var containerID: String?
        do {
            let clock = ContinuousClock()
            let began = clock.now
            var runRequest = Runtime_V1_RunPodSandboxRequest()
            runRequest.config = sandbox
            sandboxID = try await client.runtime.runPodSandbox(runRequest).podSandboxID
            let ran = clock.now
            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = sandboxID!
            create.config = container
            create.sandboxConfig = sandbox
            containerID = try await client.runtime.createContainer(create).containerID
            let created = clock.now
            var startRequest = Runtime_V1_StartContainerRequest()
            startRequest.containerID = containerID!
            _ = try await client.runtime.startContainer(startRequest)
            let ended = clock.now
            await ledger.made(sandbox: sandboxID, container: containerID)
            return CRIBenchSample(
                runPodSandbox: ran - began, createContainer: created - ran, startContainer: ended - created,
                total: ended - began)
        } catch {
            await ledger.made(sandbox: sandboxID, container: containerID)
            throw error
        }
    }
}

/// The figures: p50, p99, mean, max per call and for the three together, as a table and a JSON line.
struct CRIBenchReport {
    let runtime: String
    let samples: [CRIBenchSample]
    let parallel: Int
    let wall: Double

    /// Milliseconds, sorted.
    private func series(_ pick: (CRIBenchSample) -> Duration) -> [Double] {
        samples.map { pick($0).seconds * 1000 }.sorted()
    }

    private static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        // Nearest rank: the smallest value at or above which q of the samples lie.
        sorted[max(0, min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
    }

    func text(json: Bool) -> String {
        let rows: [(String, [Double])] = [
            ("RunPodSandbox", series(\.runPodSandbox)), ("CreateContainer", series(\.createContainer)),
            ("StartContainer", series(\.startContainer)), ("total", series(\.total)),
        ]
        var fields: [String] = []
        var lines = [
            "\(runtime): \(samples.count) pods, \(parallel) at a time, "
                + String(format: "%.2f s (%.1f pods/s)", wall, Double(samples.count) / wall),
            "| call | p50 | p99 | mean | max |", "|---|---|---|---|---|",
        ]
        for (name, values) in rows {
            let (p50, p99) = (Self.quantile(values, 0.5), Self.quantile(values, 0.99))
            let mean = values.reduce(0, +) / Double(values.count)
            lines.append(
                "| \(name) | "
                    + String(format: "%.1f ms | %.1f ms | %.1f ms | %.1f ms |", p50, p99, mean, values.last!))
            fields.append(
                "\"\(name)\": "
                    + String(
                        format: "{\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"mean_ms\": %.2f, \"max_ms\": %.2f}", p50, p99,
                        mean, values.last!))
        }
        let escaped = runtime.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let line =
            "{\"runtime\": \"\(escaped)\", \"pods\": \(samples.count), \"parallel\": \(parallel), "
            + String(format: "\"wall_s\": %.3f, ", wall) + fields.joined(separator: ", ") + "}"
        return json ? line : (lines + [line]).joined(separator: "\n")
    }
}
