/// Holds an optional nested struct of a generated type out of line. Go's pointer fields (`*Probe`,
/// `*SecurityContext`, `*Affinity` …) are nil in most objects; inline, each nil still took the struct's
/// whole size (a Container was 1.4 KB, most of it absent probes and contexts), and a server holds
/// hundreds of thousands of pods. Boxed, an absent one costs a word. The box is immutable and compared
/// by value, so the generated types keep value semantics: a change stores a new box.
public final class Box<Value: Hashable & Sendable>: Hashable, Sendable {
    public let value: Value

    public init(_ value: Value) { self.value = value }

    public static func == (a: Box, b: Box) -> Bool { a === b || a.value == b.value }

    public func hash(into hasher: inout Hasher) { value.hash(into: &hasher) }
}

/// Holds a required nested struct of a generated type out of line: an object's `metadata`, `spec` and
/// `status`. Inline they made a Pod 832 bytes, repeated in every informer bucket (a dictionary keeps
/// about 40% of its buckets empty), every event and every copy; out of line a Pod is a few words and its
/// copies share one allocation per part. Copy-on-write: a change to a value nobody else holds is made in
/// place. An absent value (never set, or not in the JSON) reads as the type's zero and compares equal to
/// an explicit zero, so equality stays that of the values.
public struct Indirect<Value: KubeModel>: Hashable, @unchecked Sendable {
    // @unchecked: the storage is mutated only through `value`'s _modify, after it has been made unique,
    // which is what makes any copy-on-write type Sendable.
    @usableFromInline
    final class Storage {
        @usableFromInline var value: Value
        @usableFromInline init(_ value: Value) { self.value = value }
    }

    @usableFromInline var storage: Storage?

    public init() {}
    public init(_ value: Value) { storage = Storage(value) }

    public var value: Value {
        @inlinable get { storage?.value ?? Value() }
        @inlinable set { storage = Storage(newValue) }
        @inlinable _modify {
            if storage == nil {
                storage = Storage(Value())
            } else if !isKnownUniquelyReferenced(&storage!) {
                storage = Storage(storage!.value)
            }
            yield &storage!.value
        }
    }

    public static func == (a: Indirect, b: Indirect) -> Bool {
        if a.storage === b.storage { return true }
        return a.value == b.value
    }

    public func hash(into hasher: inout Hasher) { value.hash(into: &hasher) }
}
