import BerthAPI
import BerthKube
import BerthStore
import Foundation
import Logging
import Synchronization

/// `berth bench scheduler`: kube-scheduler's scheduler_perf shape, end to end through the store. An API
/// server on SQLite in a scratch directory, N hollow nodes, M pending pods written to the store first;
/// then the scheduler starts and the clock runs until a store watch has seen every pod bound. The
/// decisions are then checked: every pod bound once, no node over its cpu, memory or pod capacity, and
/// the pods with a nodeSelector on matching nodes.
public enum SchedulingBenchmark {
    public struct Report: Sendable, CustomStringConvertible {
        public var nodes: Int
        public var pods: Int
        public var createSeconds: Double
        /// The scheduler's informers listing nodes and pods (before the first decision).
        public var syncSeconds: Double
        /// From the first decision until a store watch has seen the last binding.
        public var scheduleSeconds: Double
        public var podsPerSecond: Double { Double(pods) / scheduleSeconds }
        public var podsPerSecondWithSync: Double { Double(pods) / (scheduleSeconds + syncSeconds) }
        public var violations: [String]
        public var rssMB: Int
        public var description: String {
            "nodes=\(nodes) pods=\(pods) create=\(String(format: "%.2f", createSeconds))s sync=\(String(format: "%.2f", syncSeconds))s "
                + "schedule=\(String(format: "%.2f", scheduleSeconds))s throughput=\(Int(podsPerSecond)) pods/s "
                + "with-sync=\(Int(podsPerSecondWithSync)) pods/s "
                + "rss=\(rssMB)MB check=\(violations.isEmpty ? "ok" : "FAILED: \(violations.prefix(5).joined(separator: "; "))")"
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    public static func run(nodes: Int, pods: Int, dataDir: String, logger: Logger) async throws -> Report {
        var config = ServerConfig(dataDir: dataDir)
        config.leaderElect = false
        let server = try APIServer(config: config, logger: logger)
        try await server.bootstrap()
        let client: any KubeClient = LocalClient(server: server, manager: "bench")
        // The nodes only (the benchmark measures the scheduler): hollow nodes' Nodes without their agents.
        let hollow = HollowConfig(count: nodes)
        await forEachConcurrently(0..<nodes, width: 64) { i in _ = try? await client.create(hollow.nodeObject(i)) }

        // Pending pods: 100m/128Mi each; every tenth asks for zone-a nodes.
        let createStart = ContinuousClock.now
        await forEachConcurrently(0..<pods, width: 256) { i in
            var pod = CoreV1.Pod()
            pod.metadata.name = "bench-\(i)"
            pod.metadata.namespace = "default"
            pod.metadata.labels = ["app": "bench"]
            var container = CoreV1.Container(name: "c", image: "registry.local/pause:1")
            container.resources.requests = ["cpu": "100m", "memory": "128Mi"]
            pod.spec.containers = [container]
            if i % 10 == 0 { pod.spec.nodeSelector = ["topology.kubernetes.io/zone": "zone-a"] }
            _ = try? await client.create(pod)
        }
        let createSeconds = seconds(ContinuousClock.now - createStart)

        // Count bindings through a store watch from the current revision.
        let from = try await server.store.currentRevision()
        let events = try await server.store.watch(prefix: Registry.pods.keyPrefix, afterRevision: from)
        let factory = InformerFactory(client: LocalClient(server: server, manager: "berth-informer"), logger: logger)
        var cpConfig = ControlPlaneConfig()
        cpConfig.controllers = false
        let ctx = ControllerContext(
            server: server, informers: factory, events: EventRecorder(), logger: logger, config: cpConfig)
        let scheduler = Scheduler(ctx)
        let progress = ProcessInfo.processInfo.environment["BERTH_BENCH_PROGRESS"] != nil
        // Like scheduler_perf, the clock runs while the scheduler is up with its informers synced (the
        // sync — listing and decoding every pod — is reported on its own).
        let syncStart = ContinuousClock.now
        let startBox = Mutex(syncStart)
        let synced = Channel<Void>()
        let runner = Task {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { await factory.run() }
                g.addTask { await ctx.events.run(client: ctx.client("berth-events")) }
                await factory.waitForSync()
                startBox.withLock { $0 = .now }
                synced.push(())
                g.addTask { await scheduler.run() }
                await g.waitForAll()
            }
        }
        _ = await synced.pop()
        let start = startBox.withLock { $0 }
        let syncSeconds = seconds(start - syncStart)
        if progress {
            FileHandle.standardError.write(Data("informers synced in \(String(format: "%.2f", syncSeconds))s\n".utf8))
        }
        var bound = Set<String>()
        // A byte search, not a JSON decode: the counting must not compete with the scheduler for CPU.
        let marker = Array("\"nodeName\":\"".utf8)
        for try await e in events where e.kind == .put {
            guard ByteSearch.contains(e.kv.value, marker) else { continue }
            bound.insert(e.kv.key)
            if progress, bound.count % 1000 == 0 {
                FileHandle.standardError.write(
                    Data("\(String(format: "%.2f", seconds(ContinuousClock.now - start)))s \(bound.count) bound\n".utf8)
                )
            }
            if bound.count >= pods { break }
        }
        let scheduleSeconds = seconds(ContinuousClock.now - start)
        runner.cancel()
        _ = await runner.value

        // Check the decisions against the stored state.
        var violations: [String] = []
        let stored = try await client.list(CoreV1.Pod.self)
        let nodeList = try await client.list(CoreV1.Node.self)
        let zones = Dictionary(
            nodeList.map { ($0.metadata.name ?? "", $0.metadata.labels["topology.kubernetes.io/zone"]) },
            uniquingKeysWith: { a, _ in a })
        var used: [String: (cpu: Int64, mem: Int64, pods: Int64)] = [:]
        for p in stored {
            guard let node = p.spec.nodeName, !node.isEmpty else {
                violations.append("\(p.metadata.name ?? "") not bound")
                continue
            }
            let requests = p.spec.containers.first?.resources.requests ?? [:]
            var u = used[node] ?? (0, 0, 0)
            u.cpu += requests["cpu"]?.milliValue ?? 0
            u.mem += requests["memory"]?.value ?? 0
            u.pods += 1
            used[node] = u
            if let zone = p.spec.nodeSelector["topology.kubernetes.io/zone"], zones[node] ?? nil != zone {
                violations.append("\(p.metadata.name ?? "") on \(node) outside \(zone)")
            }
        }
        for n in nodeList {
            let name = n.metadata.name ?? ""
            guard let u = used[name] else { continue }
            let a = n.status.allocatable
            if u.cpu > a["cpu"]?.milliValue ?? 0 || u.mem > a["memory"]?.value ?? 0 || u.pods > a["pods"]?.value ?? 0 {
                violations.append("\(name) over capacity")
            }
        }
        var rss = 0
        if let statm = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = statm.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        {
            rss = (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
        }
        await server.store.close()
        return Report(
            nodes: nodes, pods: pods, createSeconds: createSeconds, syncSeconds: syncSeconds,
            scheduleSeconds: scheduleSeconds, violations: violations, rssMB: rss)
    }
}
