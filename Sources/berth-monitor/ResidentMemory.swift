#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Keeps the monitor's resident set to what it uses. A monitor lives as long as its container, one per
/// container, and most of what its static binary maps is touched once: the Swift runtime's start-up
/// (metadata and conformance tables), option parsing, spawning the runtime. The kernel also maps the
/// neighbours of every page faulted in (fault-around, 64 KiB), so a monitor that has started holds
/// ~4 MB of its executable resident although its poll loop needs a fraction of it.
///
/// Those pages are clean and shared with every other monitor through the page cache, so they cost the
/// machine little; but resident size is what operators read in `ps` and `top`, so the monitor lets go
/// of them once its container runs: executable (never written) mappings of its own binary are marked
/// MADV_RANDOM (no fault-around from then on) and dropped with MADV_DONTNEED; the pages the loop needs
/// fault back in from the page cache. Writable and read-only data are left alone: relocated or written
/// pages there are private copies that dropping would lose.
enum ResidentMemory {
    static func releaseExecutableText() {
        guard let maps = try? FileSystem.readString("/proc/self/maps"),
              let executable = try? FileSystem.realPath("/proc/self/exe") else { return }
        for line in maps.split(separator: "\n") {
            // start-end perms offset dev inode path
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[5...].joined(separator: " ") == executable else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start,
                  let address = UnsafeMutableRawPointer(bitPattern: start) else { continue }
            _ = madvise(address, Int(end - start), MADV_RANDOM)
            _ = madvise(address, Int(end - start), MADV_DONTNEED)
        }
    }
}
