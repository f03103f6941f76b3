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
