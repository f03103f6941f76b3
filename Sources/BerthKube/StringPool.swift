import Synchronization

/// Shares the storage of equal strings among decoded objects: the image, owner UID, toleration keys and
/// termination-message path that every pod of a ReplicaSet repeats, and the name and UID of one pod that
/// each informer decoding it (pods, their metadata, the hollow nodes' view) would otherwise keep apart.
/// A string of more than 15 UTF-8 bytes is a heap allocation of its own (shorter ones live inside the
/// `String`), about 48–80 bytes each, tens of them per pod.
///
/// A direct-mapped table (a slot per hash, the newest string wins), not a set: it never grows, and a
/// string nobody holds any more leaves when its slot is taken, so the pool costs a fixed ~1 MB instead
/// of remembering every name it has seen. Strings that repeat are met again long before ~65,000 others
/// have landed on their slot.
public final class StringPool: Sendable {
    /// The pool informers decode into.
    public static let shared = StringPool()

    private let mask: Int
    private let slots: Mutex<[String?]>

    /// `slotBits`: 2^slotBits slots, 16 bytes each — 16 (1 MB) for a server caching every pod, fewer
    /// for an agent caching one node's.
    public init(slotBits: Int = 16) {
        mask = (1 << slotBits) - 1
        slots = Mutex([String?](repeating: nil, count: 1 << slotBits))
    }

    /// `s`, or an equal string already in the pool (sharing its storage).
    @inlinable
    public func intern(_ s: String) -> String {
        // Short strings are stored inline: nothing to share.
        guard s.utf8.count > 15 else { return s }
        return share(s)
    }

    @usableFromInline
    func share(_ s: String) -> String {
        let slot = s.hashValue & mask
        return slots.withLock { table in
            if let existing = table[slot], existing == s { return existing }
            table[slot] = s
            return s
        }
    }
}
