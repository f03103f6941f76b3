#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import CSeccomp

/// Compiled seccomp filters kept under the runtime's state root (`<root>/@seccomp-cache/`), so that only the
/// first container with a given profile pays for libseccomp's compilation (docker's default profile:
/// ~400 rules, more time than the rest of a start). crun keeps a cache of the same kind.
///
/// A file is named by a 64-bit hash of its key and holds the whole key before the program: a lookup
/// compares the key byte for byte, so two plans whose hashes collide never share a filter. The key is
/// everything libseccomp compiles from (the plan: default action, flags, architectures, every rule
/// with its conditions), the native architecture and the library's version. A file that is not what
/// it should be is ignored and replaced; the cache is an optimisation, never a source of truth.
///
/// The directory is opened by the runtime's parent process and handed to the init as a descriptor:
/// the init looks filters up after pivot_root, when the host's paths are gone.
public struct SeccompCache: Sendable {
    public let directory: Int32

    public init(directory: Int32) { self.directory = directory }

    static let magic = Array("berth-seccomp-bpf-1\n".utf8)

    /// The plan's canonical bytes (see the type's comment).
    public static func key(_ plan: SeccompPlan) -> [UInt8] {
        var out = magic
        func put(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ text: String) {
            put(UInt64(text.utf8.count))
            out.append(contentsOf: text.utf8)
        }
        put(SeccompPlan.libraryVersion)
        put(UInt64(seccomp_arch_native()))
        put(UInt64(plan.defaultAction))
        put(UInt64(plan.logFlag ? 1 : 0) | UInt64(plan.specAllowFlag ? 2 : 0))
        put(UInt64(plan.architectures.count))
        for arch in plan.architectures { put(UInt64(arch)) }
        put(UInt64(plan.rules.count))
        for rule in plan.rules {
            put(UInt64(UInt32(bitPattern: rule.number)))
            put(UInt64(rule.action))
            put(UInt64(rule.conditions.count))
            for c in rule.conditions {
                put(UInt64(c.index))
                put(UInt64(c.op))
                put(c.value)
                put(c.valueTwo)
            }
        }
        return out
    }

    /// FNV-1a, 64 bits: a file name, not a proof of identity (the key inside the file is that).
    static func fileName(_ key: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + ".bpf"
    }

    /// The program kept for `key`, or nil.
    public func lookup(_ key: [UInt8]) -> [UInt8]? {
        let fd = berth_openat(directory, Self.fileName(key), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0)
        guard fd >= 0 else { return nil }
        guard let bytes = try? FileDescriptor(owning: fd).readAll() else { return nil }
        let header = 8 + key.count
        guard bytes.count > header else { return nil }
        let length = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length == UInt64(key.count), bytes[8..<header].elementsEqual(key) else { return nil }
        let program = Array(bytes[header...])
        return program.count % 8 == 0 ? program : nil
    }

    /// Keeps `program` for `key` (written aside, then renamed into place: readers see all or nothing).
    /// Failures are ignored: the next container compiles again.
    public func store(_ key: [UInt8], program: [UInt8]) {
        let name = Self.fileName(key)
        let temporary = "\(name).\(getpid()).tmp"
        let fd = berth_openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let file = FileDescriptor(owning: fd)
        var contents: [UInt8] = []
        withUnsafeBytes(of: UInt64(key.count).littleEndian) { contents.append(contentsOf: $0) }
        contents += key
        contents += program
        do { try file.write(contents) } catch {
            unlinkat(directory, temporary, 0)
            return
        }
        file.close()
        if renameat(directory, temporary, directory, name) != 0 { unlinkat(directory, temporary, 0) }
    }
}
