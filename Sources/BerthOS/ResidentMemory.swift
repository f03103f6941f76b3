#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// Keeps a long-lived process's resident set to what it uses: the monitors (one per container) and the
/// node agent let go of their start-up code once they are up.
///
/// The monitor's case (the first user): a monitor lives as long as its container, one per
/// container, and most of what its static binary maps is touched once: the Swift runtime's start-up
/// (metadata and conformance tables), option parsing, spawning the runtime. The kernel also maps the
/// neighbours of every page faulted in (fault-around, 64 KiB), so a monitor that has started holds
/// ~4 MB of its executable resident although an idle poll loop needs a fraction of it.
///
/// Those pages are clean and shared with every other monitor through the page cache, so they cost the
/// machine little; but resident size is what operators read in `ps` and `top`, so the monitor lets go
/// of them once its container runs: each read-only mapping of its own binary (text, read-only data,
/// unwind tables) that holds no private copy of a page (smaps `Anonymous: 0 kB`: nothing relocated or
/// written there) is dropped with MADV_DONTNEED; the pages the poll loop needs fault back in from the
/// page cache, with their fault-around neighbours (MADV_RANDOM does not stop fault-around, only
/// readahead), so a monitor copying a steady log stream grows back to ~3.9 MB while an idle one stays
/// near 2 MB. A mapping with private pages (the RELRO part after start-up relocation) or a writable one
/// is left alone: dropping would lose them.
///
/// The node agent (`berth agent`) does the same after start-up and after each burst of pod changes has
/// settled: of the ~40 MB a busy agent has resident, ~30 MB is its binary's code, mapped in fault-around
/// blocks across every module start-up and pod creation touched (option parsing, TLS set-up, the
/// engine's, the CRI's and the typed model's initialisation, sandbox and volume set-up); its steady sync
/// loops need far less of it. It also keeps one heap arena and trims the heap when it lets go.
public enum ResidentMemory {
    /// One heap arena for the whole process (glibc makes up to 8 per core, each holding on to what was
    /// freed in it): for a daemon whose threads allocate little at a time. Call before threads start.
    public static func useOneHeapArena() { _ = berth_malloc_arena_max(1) }

    /// Gives the heap's free pages back to the kernel.
    public static func trimHeap() { _ = berth_malloc_trim() }

    /// Drops the process's clean pages of its own executable (see above).
    public static func releaseExecutablePages() {
        guard let smaps = try? FileSystem.readString("/proc/self/smaps"),
            let executable = try? FileSystem.realPath("/proc/self/exe")
        else { return }
        var candidate: (start: UInt, end: UInt)?
        // Collected first and dropped last: parsing the text touches much of the standard library, which
        // would fault straight back in what an earlier drop released.
        var ranges: [(start: UInt, end: UInt)] = []
        ranges.reserveCapacity(8)
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                // A mapping's header: start-end perms offset dev inode [path]
                candidate = nil
                let range = first.split(separator: "-")
                guard fields.count >= 6, !fields[1].contains("w"), fields[5...].joined(separator: " ") == executable,
                    range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                    end > start
                else { continue }
                candidate = (start, end)
            } else if fields.first == "Anonymous:", let mapping = candidate {
                candidate = nil
                if fields.count >= 2, fields[1] == "0" { ranges.append(mapping) }
            }
        }
        for mapping in ranges {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            _ = madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED)
        }
    }
}
