import Foundation
import Hummingbird

/// What a write brings that a strategy may need besides the object: the resource it addresses, who asks,
/// through which subresource, and how the server is configured.
struct StrategyContext: Sendable {
    var resource: ResourceType
    /// nil for writes the server makes itself (a create has no use for the caller yet).
    var user: UserInfo?
    var subresource: String?
    var config: ServerConfig
}

/// How a DELETE of one object proceeds, once the generic checks (preconditions) have passed.
enum DeletionPlan {
    /// The strategy marked the object itself (a Namespace set Terminating for its controller to empty):
    /// store it as changed and answer 200; the propagation policy does not apply.
    case markOnly
    /// Mark the object (deletionTimestamp, deletionGracePeriodSeconds) and keep it for `gracePeriod`
    /// seconds or until its finalizers are gone; 0 means finalizers alone hold it.
    case proceed(gracePeriod: Int64)
}

/// The rules one kind adds to the generic create/update/delete path of `Handler` (CRUD.swift):
/// kube-apiserver's per-kind `strategy.go` (defaulting, PrepareForCreate, PrepareForUpdate, Validate,
/// ValidateUpdate), its table printers and field-label conversions, and the few storage hooks where a kind
/// does more than store an object (a Service allocates addresses, a Namespace is finalized, a Pod is
/// deleted gracefully and bound to a node).
///
/// Strategies work on JSON trees for now. Each hook takes the object whole (and the stored one on
/// update) rather than reaching into the handler, so it can move to typed objects (BerthKube) unchanged
/// in shape. The defaults below are the shared behaviour (`DefaultStrategy` is a kind with nothing more);
/// a kind overrides only what differs.
protocol ResourceStrategy: Sendable {
    /// Names must be DNS-1123 labels (63 characters, no dots) rather than subdomains: Namespace, Service.
    var namesAreLabels: Bool { get }

    /// Upstream defaulting (what `kubectl get -o yaml` shows that nobody sent). `creating`: defaults set
    /// only when the object is created.
    func applyDefaults(_ obj: inout JSON, creating: Bool)
    /// Before validation on create: status reset or derived, admission-like additions.
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext)
    /// Before `prepareForCreate` and validation: built-in mutating admission that reads other objects
    /// (a Pod's ServiceAccount, its namespace's LimitRanges). Throws to refuse the create.
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws
    /// Before defaulting and validation on update (and on every subresource write): what the request may
    /// not change is taken from `old` (the spec/status split), or the write is refused (throws).
    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws
    /// A status-subresource write: the request's status with the stored spec (and for some kinds some
    /// stored metadata). Called by `splitSpecAndStatus`.
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON)
    /// Whether `metadata.generation` moves from `old` to `new` (both defaulted).
    func generationChanged(old: JSON, new: JSON, _ r: ResourceType) -> Bool

    /// The kind's own field errors, on create and update (metadata rules are generic: `Validation`).
    func validate(_ obj: JSON) -> [APIError.Cause]
    /// What an update may not change, beyond `validate` of the new object.
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause]

    /// `?fieldSelector=` labels beyond metadata.name/metadata.namespace.
    var fieldLabels: FieldLabelSet { get }
    /// The columns of `kubectl get` (server-side printing) and one object's cells in them.
    var tableColumns: [Tables.Column] { get }
    func tableCells(_ obj: JSON) -> [JSON]

    /// Stores a new object: `write` stores it. A kind that allocates from shared state (Service: cluster IPs,
    /// node ports) does it around the write.
    func create(
        _ obj: JSON, key: String, _ ctx: StrategyContext, handler: Handler,
        write: (JSON) async throws -> JSON
    ) async throws -> JSON
    /// After a create that was stored (not a dry run).
    func afterCreate(_ obj: JSON, handler: Handler) async
    /// How a DELETE of `obj` proceeds. `gracePeriod` is the request's, if any.
    func planDeletion(_ obj: inout JSON, gracePeriod: Int64?, _ ctx: StrategyContext) throws -> DeletionPlan
    /// Whether a delete may add the garbage collector's finalizers (orphan) to this kind.
    var orphansDependents: Bool { get }
    /// Whether an object being deleted with no finalizers left may go now (a Namespace also waits for its
    /// spec.finalizers when the namespace controller runs).
    func readyToRemove(_ obj: JSON, _ ctx: StrategyContext) -> Bool
    /// After the object was removed from the store.
    func afterDelete(_ obj: JSON, handler: Handler) async

    /// An object as stored, and a stored object as this resource serves it: the conversion of a kind
    /// served in a second group over the first's storage (events.k8s.io/v1 Events are core Events), and
    /// a custom resource's defaults applied on read.
    func toStorage(_ obj: JSON) -> JSON
    func fromStorage(_ obj: inout JSON)

    /// The autoscaling/v1 Scale of an object (its `/scale` subresource), and how a new replica count is
    /// written into it.
    func scale(of obj: JSON) -> JSON
    func setReplicas(_ obj: inout JSON, _ replicas: Int64)

    /// A POST to a subresource that is not an object write (pods/binding, pods/eviction); nil: not served.
    func post(_ call: Call, subresource: String, namespace: String?, name: String, handler: Handler) async throws
        -> Response?
}

extension ResourceStrategy {
    var namesAreLabels: Bool { false }
    func applyDefaults(_ obj: inout JSON, creating: Bool) {}
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {}
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {}
    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        splitSpecAndStatus(&obj, old: old, ctx)
    }
    func prepareForStatusUpdate(_ obj: inout JSON, old: JSON) {
        obj["spec"] = old["spec"]
    }
    /// Upstream's status strategies: a kind with a status subresource ignores status in writes to the
    /// main resource, and spec in writes to status.
    func splitSpecAndStatus(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) {
        guard ctx.resource.subresources.contains("status") else { return }
        if ctx.subresource == "status" { prepareForStatusUpdate(&obj, old: old) } else { obj["status"] = old["status"] }
    }
    func generationChanged(old: JSON, new: JSON, _ r: ResourceType) -> Bool {
        r.hasSpec && Generation.specChanged(old: old, new: new)
    }
    /// Upstream's PrepareForCreate of the workload kinds: whatever status a client sends is dropped, for
    /// the zero status as Go encodes it (`zeros`: the fields that are not omitempty, which typed clients
    /// such as the Python client require).
    func resetStatus(_ obj: inout JSON, zeros: [String] = []) {
        obj["status"] = .object(Dictionary(uniqueKeysWithValues: zeros.map { ($0, JSON.int(0)) }))
    }

    func validate(_ obj: JSON) -> [APIError.Cause] { [] }
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] { [] }

    var fieldLabels: FieldLabelSet { .metadataOnly }
    var tableColumns: [Tables.Column] { [Tables.nameColumn, Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] { [Tables.nameCell(obj), Tables.ageCell(obj)] }

    func create(
        _ obj: JSON, key: String, _ ctx: StrategyContext, handler: Handler,
        write: (JSON) async throws -> JSON
    ) async throws -> JSON {
        try await write(obj)
    }
    func afterCreate(_ obj: JSON, handler: Handler) async {}
    func planDeletion(_ obj: inout JSON, gracePeriod: Int64?, _ ctx: StrategyContext) throws -> DeletionPlan {
        .proceed(gracePeriod: 0)
    }
    var orphansDependents: Bool { true }
    func readyToRemove(_ obj: JSON, _ ctx: StrategyContext) -> Bool { true }
    func afterDelete(_ obj: JSON, handler: Handler) async {}
    func toStorage(_ obj: JSON) -> JSON { obj }
    func fromStorage(_ obj: inout JSON) {}
    func scale(of obj: JSON) -> JSON { Handler.scaleOf(obj) }
    func setReplicas(_ obj: inout JSON, _ replicas: Int64) { obj["spec"]["replicas"] = .int(replicas) }
    func post(_ call: Call, subresource: String, namespace: String?, name: String, handler: Handler) async throws
        -> Response?
    {
        nil
    }
}

/// A kind with nothing beyond the shared behaviour.
struct DefaultStrategy: ResourceStrategy {}
