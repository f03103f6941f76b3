import Foundation
import Testing
@testable import BerthImage

@Suite struct SnapshotTests {
    /// prepare (overlay) → change files → commit as a new image → prepare (copy) shows the changes.
    @Test(.enabled(if: Support.isRoot)) func prepareCommitRemove() async throws {
        let root = Support.temporaryDirectory("snap")
        defer { Support.remove(root) }
        let service = try Support.service(root)
        _ = try await service.importLayers(Support.busyboxLayers, name: "example.com/base:1")
        let rootfs = try service.prepareRootfs(image: "example.com/base:1", containerID: "c1", snapshotter: .overlay)
        #expect(rootfs == root + "/containers/c1/rootfs")
        #expect(throws: ImageError.self) { try service.prepareRootfs(image: "example.com/base:1", containerID: "c1") }
        let fm = FileManager.default
        try "new\n".write(toFile: rootfs + "/added.txt", atomically: false, encoding: .utf8)
        try fm.removeItem(atPath: rootfs + "/bin/ls")
        try fm.removeItem(atPath: rootfs + "/etc")
        try fm.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: false)
        try "fresh\n".write(toFile: rootfs + "/etc/only", atomically: false, encoding: .utf8)
        let committed = try await service.commit(containerID: "c1", name: "example.com/committed:1")
        #expect(committed.layers.count == 2)
        try service.removeRootfs(containerID: "c1")
        #expect(!fm.fileExists(atPath: root + "/containers/c1"))

        let copy = try service.prepareRootfs(image: "example.com/committed:1", containerID: "c2", snapshotter: .copy)
        #expect(try String(contentsOfFile: copy + "/added.txt", encoding: .utf8) == "new\n")
        #expect(!fm.fileExists(atPath: copy + "/bin/ls"))
        #expect(fm.fileExists(atPath: copy + "/bin/busybox"))
        #expect(try fm.contentsOfDirectory(atPath: copy + "/etc") == ["only"])
        let overlay = try service.prepareRootfs(
            image: "example.com/committed:1", containerID: "c3", snapshotter: .overlay)
        #expect(
            try Support.listing(overlay).filter { !$0.hasPrefix("etc ") }
                == Support.listing(copy).filter { !$0.hasPrefix("etc ") })
        try service.removeRootfs(containerID: "c2")
        try service.removeRootfs(containerID: "c3")
        #expect(service.store.check().isEmpty)
        await service.shutdown()
    }

    @Test func copySnapshotterWorksUnprivileged() async throws {
        let root = Support.temporaryDirectory("snap-copy")
        defer { Support.remove(root) }
        let store = try ContentStore(root: root)
        let service = try ImageService(store: store, unpackOptions: UnpackOptions(privileged: false))
        _ = try await service.importLayers(Support.bigLayers, name: "example.com/big:1")
        let rootfs = try service.prepareRootfs(image: "example.com/big:1", containerID: "x", snapshotter: .copy)
        #expect(!FileManager.default.fileExists(atPath: rootfs + "/usr/bin/cat"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: rootfs + "/usr/lib/python3.11/email") == ["README"])
        // Unprivileged snapshots keep whiteouts as .wh. files (never mounted).
        let top = store.snapshotPath(store.image("example.com/big:1")!.chainIDs[3])
        #expect(FileManager.default.fileExists(atPath: top + "/usr/bin/.wh.cat"))
        try service.removeRootfs(containerID: "x")
        await service.shutdown()
    }
}
