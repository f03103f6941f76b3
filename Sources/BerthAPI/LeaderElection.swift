import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// Leader election through a coordination.k8s.io/v1 Lease (client-go's algorithm): the holder renews
/// `spec.renewTime` every `renewInterval`; anyone may take the lease over once `renewTime +
/// leaseDurationSeconds` has passed. Every write is a compare-and-swap on the Lease's store revision, so
/// two candidates can never both succeed. The Lease is an ordinary API object
/// (`kubectl get lease -n kube-system <name>`).
public final class LeaderElector: Service, @unchecked Sendable {
    public let identity: String
    public let name: String
    public let namespace: String
    let store: any KVStore
    let leaseDuration: Duration
    let renewInterval: Duration
    let logger: Logger
    private let lock = NSLock()
    private var leading = false
    /// When this process last wrote the Lease successfully (only touched by the election loop).
    private var lastRenew = Date.distantPast
    private let changes: AsyncStream<Bool>.Continuation
    /// true when this process becomes leader, false when it stops being leader.
    public let leadership: AsyncStream<Bool>

    public init(
        store: any KVStore, identity: String, name: String = "berth-controller-manager",
        namespace: String = "kube-system",
        leaseDuration: Duration = .seconds(3), renewInterval: Duration = .milliseconds(500),
        logger: Logger = Logger(label: "berth.leader")
    ) {
        self.store = store; self.identity = identity; self.name = name; self.namespace = namespace
        self.leaseDuration = leaseDuration; self.renewInterval = renewInterval; self.logger = logger
        (leadership, changes) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(16))
    }

    public var isLeader: Bool { lock.lock(); defer { lock.unlock() }; return leading }

    var key: String {
        Registry.find(group: "coordination.k8s.io", version: "v1", plural: "leases")!.key(
            namespace: namespace, name: name)
    }

    static func micro(_ d: Date) -> String { APITime.micro(d) }
    static func parse(_ s: String?) -> Date? { APITime.parse(s) }

    private func set(_ value: Bool) {
        lock.lock()
        let changed = leading != value
        leading = value
        lock.unlock()
        if changed {
            logger.info(
                value ? "became leader" : "lost leadership",
                metadata: ["identity": "\(identity)", "lease": "\(namespace)/\(name)"])
            changes.yield(value)
        }
    }

    /// One election round; returns whether we hold the lease afterwards.
    @discardableResult
    public func tryAcquireOrRenew() async -> Bool {
        let now = Date()
        let seconds = Int64(leaseDuration.components.seconds)
        do {
            guard let kv = try await store.get(key) else {
                let lease: JSON = [
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": [
                        "name": .string(name), "namespace": .string(namespace),
                        "uid": .string(UUID().uuidString.lowercased()),
                        "creationTimestamp": .string(Handler.now()),
                    ],
                    "spec": [
                        "holderIdentity": .string(identity), "leaseDurationSeconds": .int(seconds),
                        "acquireTime": .string(Self.micro(now)), "renewTime": .string(Self.micro(now)),
                        "leaseTransitions": 0,
                    ],
                ]
                _ = try await store.create(key, value: lease.serialized())
                lastRenew = now
                set(true)
                return true
            }
            var lease = try JSON.parse(kv.value)
            let holder = lease["spec"]["holderIdentity"].string ?? ""
            let renew = Self.parse(lease["spec"]["renewTime"].string) ?? .distantPast
            let duration = Double(lease["spec"]["leaseDurationSeconds"].int ?? seconds)
            if holder != identity && !holder.isEmpty && renew.addingTimeInterval(duration) > now {
                set(false)
                return false
            }
            if holder != identity {
                lease["spec"]["holderIdentity"] = .string(identity)
                lease["spec"]["acquireTime"] = .string(Self.micro(now))
                lease["spec"]["leaseTransitions"] = .int((lease["spec"]["leaseTransitions"].int ?? 0) + 1)
            }
            lease["spec"]["renewTime"] = .string(Self.micro(now))
            lease["spec"]["leaseDurationSeconds"] = .int(seconds)
            _ = try await store.update(key, value: lease.serialized(), expectedRevision: kv.modRevision)
            lastRenew = now
            set(true)
            return true
        } catch {
            // A lost race: someone else wrote the Lease, so we no longer hold it.
            if case StoreError.conflict = error { set(false); return false }
            // A slow or failing store: keep leading until the renew deadline (2/3 of the lease
            // duration since our last successful renewal, client-go's renewDeadline), well before
            // anyone else may take the Lease over. Restarting every controller on one slow write
            // would only add load to a store that is already struggling.
            let deadline = lastRenew.addingTimeInterval(Double(leaseDuration.components.seconds) * 2 / 3)
            if isLeader && Date() < deadline { return true }
            set(false)
            return false
        }
    }

    /// Steps down by clearing the holder, so another candidate can take over at once.
    public func release() async {
        guard isLeader, let kv = try? await store.get(key), var lease = try? JSON.parse(kv.value),
            lease["spec"]["holderIdentity"].string == identity
        else { return }
        lease["spec"]["holderIdentity"] = ""
        lease["spec"]["renewTime"] = .string(Self.micro(.distantPast))
        _ = try? await store.update(key, value: lease.serialized(), expectedRevision: kv.modRevision)
        set(false)
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await tryAcquireOrRenew()
            do { try await gracefulShutdownAwareSleep(for: renewInterval) } catch { break }
        }
        await release()
        changes.finish()
    }
}
