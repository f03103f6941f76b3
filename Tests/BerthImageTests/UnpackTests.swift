import Foundation
import Testing
import BerthOS
import CImageSys
@testable import BerthImage

/// Streaming tar + decompression + contained unpack, with hand-built archives.
@Suite struct UnpackTests {
    static func archive(_ build: (TarWriter) throws -> Void) throws -> [UInt8] {
        var bytes: [UInt8] = []
        let writer = TarWriter { bytes += $0 }
        try build(writer)
        try writer.finish()
        return bytes
    }

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let c = GzipCompressor()
        try bytes.withUnsafeBytes { try c.feed($0, finish: true) { out += $0 } }
        return out
    }

    /// Unpacks `bytes` into a fresh directory (in chunks of `chunk` bytes, to exercise the state machine).
    static func unpack(
        _ bytes: [UInt8], compression: Compression = .none, options: UnpackOptions = UnpackOptions(),
        into dir: String? = nil, chunk: Int = 777
    ) throws -> (dir: String, pipeline: LayerPipeline) {
        let target = dir ?? Support.temporaryDirectory("unpack")
        let unpacker = LayerUnpacker(root: try Root(path: target), options: options, layerName: "test-layer")
        let pipeline = LayerPipeline(compression: compression, unpacker: unpacker)
        do {
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                try bytes[offset..<end].withUnsafeBytes { try pipeline.feed($0) }
                offset = end
            }
            _ = try pipeline.finish()
        } catch {
            if dir == nil { Support.remove(target) }
            throw error
        }
        return (target, pipeline)
    }

    @Test func entryTypesModesTimesAndLongNames() throws {
        let longName = "deep/" + String(repeating: "d", count: 120) + "/file.txt"
        let tar = try Self.archive { w in
            try w.addEntry("etc/", type: "5", mode: 0o750)
            try w.addEntry("etc/hello", type: "0", bytes: Array("hi\n".utf8), mode: 0o4755)
            try w.addEntry("etc/link", type: "2", link: "hello")
            try w.addEntry("etc/hard", type: "1", link: "etc/hello")
            try w.addEntry("etc/fifo", type: "6", mode: 0o600)
            try w.addEntry(longName, type: "0", bytes: Array(repeating: 7, count: 70_000))
            try w.addEntry("./dot/./slash//x", type: "0", bytes: [1])
        }
        let (dir, _) = try Self.unpack(tar)
        defer { Support.remove(dir) }
        var info = stat()
        #expect(lstat(dir + "/etc/hello", &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o4755)
        #expect(info.st_nlink == 2)
        #expect(try String(contentsOfFile: dir + "/etc/hard", encoding: .utf8) == "hi\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/etc/link") == "hello")
        #expect(lstat(dir + "/etc/fifo", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(lstat(dir + "/etc", &info) == 0 && info.st_mode & 0o777 == 0o750)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + longName)).count == 70_000)
        #expect(FileManager.default.fileExists(atPath: dir + "/dot/slash/x"))
    }

    @Test func gzipAndZstdStreams() throws {
        let tar = try Self.archive { w in try w.addEntry("a/b", type: "0", bytes: Array(repeating: 42, count: 300_000))
        }
        let (g, p1) = try Self.unpack(try Self.gzip(tar), compression: .gzip, chunk: 1000)
        defer { Support.remove(g) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: g + "/a/b")).count == 300_000)
        #expect(p1.diffHasher.finalize() == Digest.sha256(tar))
        // Two concatenated gzip members (as pigz and some tools write) are one stream.
        let half = tar.count / 2
        let twoMembers = try Self.gzip(Array(tar[..<half])) + Self.gzip(Array(tar[half...]))
        let (g2, _) = try Self.unpack(twoMembers, compression: .gzip)
        Support.remove(g2)
        // zstd through the zstd command line tool.
        let dir = Support.temporaryDirectory("zstd")
        defer { Support.remove(dir) }
        try Data(tar).write(to: URL(fileURLWithPath: dir + "/l.tar"))
        try Support.mustRun(["zstd", "-q", "-f", dir + "/l.tar", "-o", dir + "/l.tar.zst"])
        let zst = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/l.tar.zst")))
        let (z, p2) = try Self.unpack(zst, compression: .zstd)
        defer { Support.remove(z) }
        #expect(p2.diffHasher.finalize() == Digest.sha256(tar))
        #expect(FileManager.default.fileExists(atPath: z + "/a/b"))
    }

    @Test func truncatedAndCorruptStreamsFail() throws {
        let tar = try Self.archive { w in try w.addEntry("f", type: "0", bytes: Array(repeating: 1, count: 100_000)) }
        let gz = try Self.gzip(tar)
        #expect(throws: (any Error).self) {
            let r = try Self.unpack(Array(gz[..<(gz.count / 2)]), compression: .gzip); Support.remove(r.dir)
        }
        #expect(throws: (any Error).self) {
            let r = try Self.unpack(Array(tar[..<5000]), compression: .none); Support.remove(r.dir)
        }
        var bad = tar
        bad[100] ^= 0xff  // header checksum no longer matches
        #expect(throws: (any Error).self) {
            let r = try Self.unpack(bad); Support.remove(r.dir)
        }
    }

    @Test func dotDotEntriesAreRefused() throws {
        let tar = try Self.archive { w in try w.addEntry("a/../../escape", type: "0", bytes: [1]) }
        let outside = Support.temporaryDirectory("outside")
        defer { Support.remove(outside) }
        let dir = outside + "/root"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect { _ = try Self.unpack(tar, into: dir) } throws: { error in
            guard case .hostileLayer(_, let path, _) = error as? ImageError else { return false }
            return path == "a/../../escape"
        }
        #expect(!FileManager.default.fileExists(atPath: outside + "/escape"))
    }

    @Test func symlinksCannotRedirectWritesOutside() throws {
        let outside = Support.temporaryDirectory("outside")
        defer { Support.remove(outside) }
        let dir = outside + "/root"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tar = try Self.archive { w in
            try w.addEntry("abs", type: "2", link: outside)  // absolute symlink to the real outside
            try w.addEntry("abs/pwned", type: "0", bytes: Array("x".utf8))
            try w.addEntry("rel", type: "2", link: "../../../../../../" + outside)
            try w.addEntry("rel/pwned2", type: "0", bytes: Array("x".utf8))
            try w.addEntry("/absolute-path", type: "0", bytes: Array("y".utf8))
            // Replacing the symlink, not writing through it.
            try w.addEntry("abs", type: "0", bytes: Array("replaced".utf8))
        }
        _ = try Self.unpack(tar, into: dir)
        #expect(!FileManager.default.fileExists(atPath: outside + "/pwned"))
        #expect(!FileManager.default.fileExists(atPath: outside + "/pwned2"))
        // Both writes landed inside the root, where the symlinks resolve when the root is "/".
        #expect(FileManager.default.fileExists(atPath: dir + outside + "/pwned"))
        #expect(FileManager.default.fileExists(atPath: dir + outside + "/pwned2"))
        #expect(FileManager.default.fileExists(atPath: dir + "/absolute-path"))
        #expect(try String(contentsOfFile: dir + "/abs", encoding: .utf8) == "replaced")
    }

    @Test func hardLinksOutsideAreRefused() throws {
        let dir = Support.temporaryDirectory("hard")
        defer { Support.remove(dir) }
        let escape = try Self.archive { w in try w.addEntry("h", type: "1", link: "../../../etc/passwd") }
        #expect(throws: ImageError.self) { _ = try Self.unpack(escape, into: dir) }
        // An absolute target is taken inside the root; when missing there it is not the host's file.
        let absolute = try Self.archive { w in try w.addEntry("h2", type: "1", link: "/etc/passwd") }
        #expect(throws: ImageError.self) {
            _ = try Self.unpack(absolute, options: UnpackOptions(privileged: false, whiteouts: .apply), into: dir)
        }
        let (_, pipeline) = try Self.unpack(
            absolute, options: UnpackOptions(privileged: false, whiteouts: .keep), into: dir)
        #expect(pipeline.unpacker?.pendingLinks.first?.target == "etc/passwd")
        #expect(!FileManager.default.fileExists(atPath: dir + "/h2"))
        // Through a symlinked directory: resolved inside the root.
        let viaSymlink = try Self.archive { w in
            try w.addEntry("up", type: "2", link: "/")
            try w.addEntry("data", type: "0", bytes: [1, 2, 3])
            try w.addEntry("h3", type: "1", link: "up/up/data")
        }
        _ = try Self.unpack(viaSymlink, into: dir)
        var info = stat()
        #expect(lstat(dir + "/h3", &info) == 0 && info.st_nlink == 2)
    }

    @Test func devicesAreSkippedWhenUnprivileged() throws {
        let tar = try Self.archive { w in
            try w.addEntry("dev/null", type: "3", mode: 0o666, major: 1, minor: 3)
            try w.addEntry("dev/sda", type: "4", mode: 0o660, major: 8, minor: 0)
            try w.addEntry("ok", type: "0", bytes: [1])
        }
        let (dir, pipeline) = try Self.unpack(tar, options: UnpackOptions(privileged: false))
        defer { Support.remove(dir) }
        #expect(pipeline.unpacker?.skippedDevices == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/dev/null"))
        #expect(FileManager.default.fileExists(atPath: dir + "/ok"))
    }

    @Test(.enabled(if: Support.isRoot)) func devicesOwnershipAndOverlayWhiteoutsAsRoot() throws {
        let tar = try Self.archive { w in
            try w.addEntry("dev/null", type: "3", mode: 0o666, major: 1, minor: 3)
            try w.addEntry("owned", type: "0", bytes: [1], mode: 0o640)
            try w.addEntry("gone/.wh.file", type: "0")
            try w.addEntry("opaque/.wh..wh..opq", type: "0")
        }
        let (dir, _) = try Self.unpack(tar, options: UnpackOptions(privileged: true, whiteouts: .overlay))
        defer { Support.remove(dir) }
        var info = stat()
        #expect(lstat(dir + "/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 259)
        #expect(lstat(dir + "/gone/file", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0)
        var value = [UInt8](repeating: 0, count: 4)
        #expect(getxattr(dir + "/opaque", "trusted.overlay.opaque", &value, 4) == 1 && value[0] == UInt8(ascii: "y"))
    }

    @Test func whiteoutsApplied() throws {
        let dir = Support.temporaryDirectory("apply")
        defer { Support.remove(dir) }
        let lower = try Self.archive { w in
            try w.addEntry("keep", type: "0", bytes: [1])
            try w.addEntry("drop", type: "0", bytes: [1])
            try w.addEntry("tree/a/b", type: "0", bytes: [1])
            try w.addEntry("op/old", type: "0", bytes: [1])
        }
        let upper = try Self.archive { w in
            try w.addEntry(".wh.drop", type: "0")
            try w.addEntry(".wh.tree", type: "0")
            try w.addEntry("op/new", type: "0", bytes: [2])
            try w.addEntry("op/.wh..wh..opq", type: "0")
        }
        let options = UnpackOptions(privileged: false, whiteouts: .apply)
        _ = try Self.unpack(lower, options: options, into: dir)
        _ = try Self.unpack(upper, options: options, into: dir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["keep", "op"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/op") == ["new"])
    }
}
