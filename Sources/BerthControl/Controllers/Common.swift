import BerthAPI
import Foundation

/// Small facts about objects that several controllers need.
enum Objects {
    static func key(namespace: String, name: String) -> String { namespace + "/" + name }
    static func split(_ key: String) -> (namespace: String, name: String) {
        guard let slash = key.firstIndex(of: "/") else { return ("", key) }
        return (String(key[..<slash]), String(key[key.index(after: slash)...]))
    }
    /// kube's SafeEncodeString alphabet: no vowels, no look-alike digits.
    static let safeAlphabet = Array("bcdfghjklmnpqrstvwxz2456789")
    /// FNV-1a, 32 and 64 bits: hashes that are the same in every process (Swift's Hasher is seeded).
    static func fnv32(_ bytes: [UInt8]) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        for b in bytes { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }
    static func fnv64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// kube's SafeEncodeString alphabet over an FNV-1a 32-bit hash (pod-template-hash and friends).
    static func shortHash(_ bytes: [UInt8], salt: Int64 = 0) -> String {
        var v = fnv32(salt != 0 ? bytes + Array(String(salt).utf8) : bytes)
        let alphabet = safeAlphabet
        var out = ""
        repeat { out.append(alphabet[Int(v % UInt32(alphabet.count))]); v /= UInt32(alphabet.count) } while v > 0
        return out
    }
}

/// client-go's ControllerExpectations: after asking for N creations or deletions, a controller waits
/// until its informer has seen them before counting pods again — otherwise a sync that runs before the
/// cache caught up would create the same pods twice.
final class Expectations: @unchecked Sendable {
    private struct Entry { var adds: Int; var deletes: Set<String>; var since: Date }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    /// Expectations older than this are considered satisfied (a lost event must not wedge a controller).
    let ttl: TimeInterval

    init(ttl: TimeInterval = 60) { self.ttl = ttl }

    func satisfied(_ key: String) -> Bool {
        lock.withLock {
            guard let e = entries[key] else { return true }
            if (e.adds <= 0 && e.deletes.isEmpty) || Date().timeIntervalSince(e.since) > ttl {
                entries[key] = nil; return true
            }
            return false
        }
    }
    func expectCreations(_ key: String, _ n: Int) {
        lock.withLock { entries[key] = Entry(adds: n, deletes: entries[key]?.deletes ?? [], since: Date()) }
    }
    func expectDeletions(_ key: String, _ pods: [String]) {
        lock.withLock { entries[key] = Entry(adds: entries[key]?.adds ?? 0, deletes: Set(pods), since: Date()) }
    }
    func creationObserved(_ key: String) { lock.withLock { entries[key]?.adds -= 1 } }
    func deletionObserved(_ key: String, pod: String) { lock.withLock { _ = entries[key]?.deletes.remove(pod) } }
    func forget(_ key: String) { lock.withLock { entries[key] = nil } }
}
