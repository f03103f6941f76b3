import BerthOS
import Foundation
import Testing

@testable import BerthAgent

/// The agent's own mounts (memory-backed emptyDirs) found and undone on a host whose mount table is
/// longer than a page: a pod's tmpfs past the first 4 KB of mountinfo was once left mounted, and its
/// pod directory with it.
@Suite(.serialized, .enabled(if: isRealRoot, "mounts tmpfs: needs real root"))
struct PodVolumeMountTests {
    @Test func unmountAllFindsMountsPastTheFirstPageOfMountinfo() throws {
        let base = FileManager.default.temporaryDirectory.path + "/berth-volume-mounts-\(getpid())"
        defer {
            PodVolumes.unmountAll(under: base)
            try? FileManager.default.removeItem(atPath: base)
        }
        // Enough mounts that mountinfo is several pages long, whatever the host already has.
        for index in 0..<80 {
            let path = "\(base)/pod/volumes/kubernetes.io~empty-dir/scratch-\(index)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try PodVolumes.mountMemory(path, sizeLimit: nil)
        }
        #expect(try FileSystem.readString("/proc/self/mountinfo").utf8.count > 8192)
        let last = "\(base)/pod/volumes/kubernetes.io~empty-dir/scratch-79"
        #expect(PodVolumes.mountPoints().contains(last))
        // Mounting again is a no-op, not a second tmpfs over the first.
        try PodVolumes.mountMemory(last, sizeLimit: nil)
        #expect(PodVolumes.mountPoints().filter { $0 == last }.count == 1)

        PodVolumes.unmountAll(under: "\(base)/pod")
        #expect(!PodVolumes.mountPoints().contains { $0.hasPrefix(base + "/") })
        try FileManager.default.removeItem(atPath: "\(base)/pod")
    }
}
