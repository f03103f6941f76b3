import Foundation
import Testing
@testable import BerthImage

/// Push and pull against Debian's docker-registry, interop with skopeo, and the store afterwards.
@Suite(.serialized) struct RegistryTests {
    /// Imports the busybox layer as an image, pushes it with Berth, pulls it into a fresh store.
    @Test func busyboxPushAndPullRoundTrip() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        defer { Support.remove(a); Support.remove(b) }
        let source = try Support.service(a)
        let name = "\(registry.host)/test/busybox:1"
        let imported = try await source.importLayers(Support.busyboxLayers, name: name)
        try await source.push(name)
        await source.shutdown()

        let target = try Support.service(b)
        let events = EventLog()
        let pulled = try await target.pull(name, progress: { events.append($0) })
        await target.shutdown()
        #expect(pulled.manifestDigest == imported.manifestDigest)
        #expect(pulled.diffIDs == imported.diffIDs)
        #expect(events.count > 0)
        #expect(target.store.check().isEmpty)
        let bin = target.store.snapshotPath(pulled.chainIDs[0]) + "/bin"
        #expect(FileManager.default.fileExists(atPath: bin + "/busybox"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: bin + "/sh") == "busybox")

        // Pushing under another repository of the same registry mounts the blobs instead of uploading.
        let mounted = Messages()
        try await source2(a).push(
            name, to: try Reference(parsing: "\(registry.host)/test/busybox-copy:1"), progress: { mounted.append($0) })
        #expect(mounted.lines.contains { $0.contains("mounted from test/busybox") })

        // A second pull is served from the store.
        let again = try Support.service(b)
        let events2 = EventLog()
        _ = try await again.pull(name, progress: { events2.append($0) })
        await again.shutdown()
        #expect(
            events2.events.contains {
                if case .layerExists = $0 { return true }; return false
            })
    }

    /// The ~120 MB four-layer image with whiteouts: push, pull, prepare rootfs (overlay and copy), gc.
    @Test func multiLayerImageWithWhiteouts() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        defer { Support.remove(a); Support.remove(b) }
        let source = try Support.service(a)
        let name = "\(registry.host)/test/big:v1"
        let imported = try await source.importLayers(Support.bigLayers, name: name)
        #expect(imported.layers.count == 4)
        try await source.push(name)
        await source.shutdown()

        let target = try Support.service(b)
        let pulled = try await target.pull(name)
        #expect(pulled.manifestDigest == imported.manifestDigest)
        #expect(target.store.check().isEmpty)

        let copyRoot = try target.prepareRootfs(image: name, containerID: "copy1", snapshotter: .copy)
        try checkWhiteouts(copyRoot)
        if Support.isRoot {
            let overlayRoot = try target.prepareRootfs(image: name, containerID: "ovl1", snapshotter: .overlay)
            try checkWhiteouts(overlayRoot)
            #expect(try Support.listing(overlayRoot) == Support.listing(copyRoot))
            // The container's writes go to its upper directory, not to the shared snapshots.
            try "x".write(toFile: overlayRoot + "/usr/bin/new-file", atomically: false, encoding: .utf8)
            #expect(FileManager.default.fileExists(atPath: b + "/containers/ovl1/upper/usr/bin/new-file"))
            try target.removeRootfs(containerID: "ovl1")
        }
        // An image in use cannot be removed; after the container goes, rmi + gc empty the store.
        await #expect(throws: ImageError.self) { try await target.remove(name) }
        try target.removeRootfs(containerID: "copy1")
        try await target.remove(name)
        let gc = try target.store.collectGarbage()
        #expect(gc.removedSnapshots.count == 4)
        #expect(target.store.blobs().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: b + "/snapshots").isEmpty)
        await target.shutdown()
    }

    func checkWhiteouts(_ root: String) throws {
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: root + "/usr/bin/python3.11"))
        #expect(fm.fileExists(atPath: root + "/usr/bin/perl-hardlink"))
        #expect(!fm.fileExists(atPath: root + "/usr/bin/cat"))  // .wh.cat
        #expect(!fm.fileExists(atPath: root + "/usr/lib/python3.11/test"))  // .wh.test (a directory)
        #expect(try fm.contentsOfDirectory(atPath: root + "/usr/lib/python3.11/email") == ["README"])  // opaque
        #expect(fm.fileExists(atPath: root + "/usr/lib/python3.11/json/__init__.py"))
        #expect(fm.fileExists(atPath: root + "/etc-motd"))
        #expect(!fm.fileExists(atPath: root + "/usr/lib/python3.11/.wh.test"))
    }

    /// Berth pushes, skopeo copies back out to an OCI layout; skopeo pushes Berth's saved layout, Berth pulls.
    @Test func interoperatesWithSkopeo() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        let work = Support.temporaryDirectory("skopeo")
        defer { Support.remove(a); Support.remove(b); Support.remove(work) }
        let berth = try Support.service(a)
        let name = "\(registry.host)/interop/busybox:berth"
        let imported = try await berth.importLayers(Support.busyboxLayers, name: name)
        try await berth.push(name)

        // Berth → registry → skopeo → OCI layout → berth load.
        try Support.mustRun(["skopeo", "copy", "--src-tls-verify=false", "docker://\(name)", "oci:\(work)/fromberth:x"])
        let other = try Support.service(b)
        let loaded = try await other.load(from: work + "/fromberth", name: "example.com/loaded:x")
        #expect(loaded.first?.diffIDs == imported.diffIDs)

        // berth save (OCI layout) → skopeo → registry → berth pull.
        try berth.exportLayout([name], to: work + "/layout")
        let pushedBySkopeo = "\(registry.host)/interop/busybox:skopeo"
        try Support.mustRun([
            "skopeo", "copy", "--dest-tls-verify=false", "oci:\(work)/layout:berth", "docker://\(pushedBySkopeo)",
        ])
        let pulled = try await other.pull(pushedBySkopeo)
        #expect(pulled.diffIDs == imported.diffIDs)
        // skopeo inspect agrees on the digest Berth computed.
        let inspect = try Support.mustRun([
            "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://\(pushedBySkopeo)",
        ])
        #expect(Digest.sha256(Array(inspect.utf8)) == pulled.manifestDigest)
        // Docker schema2 media types (skopeo --format v2s2) pull the same.
        let dockerFormat = "\(registry.host)/interop/busybox:v2s2"
        try Support.mustRun([
            "skopeo", "copy", "--format", "v2s2", "--dest-tls-verify=false", "oci:\(work)/layout:berth",
            "docker://\(dockerFormat)",
        ])
        let v2s2 = try await other.pull(dockerFormat)
        #expect(v2s2.manifestMediaType == MediaType.dockerManifest)
        #expect(v2s2.layers.allSatisfy { $0.mediaType == MediaType.dockerLayerGzip })
        #expect(v2s2.diffIDs == imported.diffIDs)
        #expect(other.store.check().isEmpty)
        await berth.shutdown()
        await other.shutdown()
    }

    /// The root filesystem Berth assembles is the one umoci unpacks from the same image (skopeo copy).
    @Test(.enabled(if: Support.isRoot)) func rootfsMatchesUmoci() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), work = Support.temporaryDirectory("umoci")
        defer { Support.remove(a); Support.remove(work) }
        let berth = try Support.service(a)
        let name = "\(registry.host)/conformance/big:1"
        _ = try await berth.importLayers(Support.bigLayers, name: name)
        try await berth.push(name)
        try Support.mustRun(["skopeo", "copy", "--src-tls-verify=false", "docker://\(name)", "oci:\(work)/oci:big"])
        try Support.mustRun(["umoci", "unpack", "--image", "\(work)/oci:big", "\(work)/bundle"])
        let ours = try berth.prepareRootfs(image: name, containerID: "conf", snapshotter: .overlay)
        defer { try? berth.removeRootfs(containerID: "conf") }
        let theirs = try Support.listing(work + "/bundle/rootfs")
        let mine = try Support.listing(ours)
        #expect(mine.count == theirs.count)
        #expect(Set(mine).symmetricDifference(Set(theirs)).sorted().prefix(10) == [])
        await berth.shutdown()
    }

    /// zstd layers: imported as zstd, pushed, pulled and unpacked through libzstd.
    @Test func zstdLayers() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        let work = Support.temporaryDirectory("zstd-layer")
        defer { Support.remove(a); Support.remove(b); Support.remove(work) }
        try Support.mustRun(["sh", "-c", "gzip -dc \(Support.busyboxLayers[0]) | zstd -q -o \(work)/layer.tar.zst"])
        let berth = try Support.service(a)
        let name = "\(registry.host)/zstd/busybox:1"
        let imported = try await berth.importLayers([work + "/layer.tar.zst"], name: name)
        #expect(imported.layers[0].mediaType == MediaType.ociLayerZstd)
        try await berth.push(name)
        let other = try Support.service(b)
        let pulled = try await other.pull(name)
        #expect(pulled.diffIDs == imported.diffIDs)
        #expect(FileManager.default.fileExists(atPath: other.store.snapshotPath(pulled.chainIDs[0]) + "/bin/busybox"))
        await berth.shutdown()
        await other.shutdown()
    }

    /// save → load (tar) and docker-archive style manifest.json, and a plain rootfs tar import.
    @Test func saveLoadAndImport() async throws {
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        let work = Support.temporaryDirectory("archive")
        defer { Support.remove(a); Support.remove(b); Support.remove(work) }
        let berth = try Support.service(a)
        let name = "example.com/saved/busybox:1"
        let imported = try await berth.importLayers(Support.busyboxLayers, name: name)
        let fd = open(work + "/image.tar", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        try berth.save([name], to: fd)
        close(fd)
        let listing = try Support.mustRun(["tar", "tf", work + "/image.tar"])
        #expect(listing.contains("manifest.json") && listing.contains("index.json") && listing.contains("oci-layout"))

        let other = try Support.service(b)
        let loaded = try await other.load(from: work + "/image.tar")
        #expect(loaded.map(\.name) == [name])
        #expect(loaded.first?.manifestDigest == imported.manifestDigest)

        // docker-archive only (no index.json): what older `docker save` writes.
        try Support.mustRun(["mkdir", "-p", work + "/docker"])
        try Support.mustRun(["tar", "xf", work + "/image.tar", "-C", work + "/docker"])
        try FileManager.default.removeItem(atPath: work + "/docker/index.json")
        try Support.mustRun(["tar", "cf", work + "/docker.tar", "-C", work + "/docker", "."])
        let dockerLoaded = try await other.load(from: work + "/docker.tar", name: "example.com/docker/loaded:2")
        #expect(dockerLoaded.first?.diffIDs == imported.diffIDs)

        // A plain rootfs tar becomes a one-layer image.
        try Support.mustRun(["sh", "-c", "gzip -dc \(Support.busyboxLayers[0]) > \(work)/rootfs.tar"])
        let plain = try await other.importLayers([work + "/rootfs.tar"], name: "example.com/plain:1")
        #expect(plain.layers.count == 1 && plain.layers[0].mediaType == MediaType.ociLayerGzip)
        #expect(plain.diffIDs == imported.diffIDs)
        #expect(other.store.check().isEmpty)
        await berth.shutdown()
        await other.shutdown()
    }

    /// Basic auth (htpasswd) on docker-registry: refused without credentials, works with them.
    @Test func basicAuth() async throws {
        let dir = Support.temporaryDirectory("htpasswd")
        defer { Support.remove(dir) }
        try Support.mustRun(["sh", "-c", "htpasswd -Bbn berth s3cret > \(dir)/htpasswd"])
        let registry = try TestRegistry(htpasswd: dir + "/htpasswd")
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a")
        defer { Support.remove(a) }
        let anonymous = try Support.service(a)
        let name = "\(registry.host)/auth/busybox:1"
        _ = try await anonymous.importLayers(Support.busyboxLayers, name: name)
        await #expect { try await anonymous.push(name) } throws: { error in
            guard case .pushing(_, .authentication) = error as? ImageError else { return false }
            return true
        }
        await anonymous.shutdown()
        let config = #"{"auths":{"\#(registry.host)":{"auth":"\#(Data("berth:s3cret".utf8).base64EncodedString())"}}}"#
        let authed = try Support.service(a) { $0.credentials = try! CredentialStore.parse(Array(config.utf8)) }
        try await authed.push(name)
        try await authed.remove(name)
        let pulled = try await authed.pull(name)
        #expect(pulled.layers.count == 1)
        await authed.shutdown()
    }

    /// HTTPS with a CA given by file: refused without it, push and pull with it.
    @Test func httpsWithCustomCA() async throws {
        let dir = Support.temporaryDirectory("tls")
        defer { Support.remove(dir) }
        try Support.mustRun([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out",
            dir + "/cert.pem",
            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ])
        let registry = try TestRegistry(tls: (dir + "/cert.pem", dir + "/key.pem"))
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a")
        defer { Support.remove(a) }
        let name = "\(registry.host)/tls/busybox:1"
        let untrusted = try Support.service(a) {
            $0.secureRegistries = [registry.host]; $0.attempts = 1
        }
        _ = try await untrusted.importLayers(Support.busyboxLayers, name: name)
        await #expect(throws: ImageError.self) { try await untrusted.push(name) }
        await untrusted.shutdown()
        let trusted = try Support.service(a) {
            $0.secureRegistries = [registry.host]; $0.caFiles = [dir + "/cert.pem"]
        }
        try await trusted.push(name)
        try await trusted.remove(name)
        _ = try trusted.store.collectGarbage()
        let pulled = try await trusted.pull(name)
        #expect(pulled.layers.count == 1)
        #expect(trusted.store.check().isEmpty)
        await trusted.shutdown()
    }

    /// Two pulls of the same image at once share the work and leave a consistent store.
    @Test func concurrentPullsShareWork() async throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let a = Support.temporaryDirectory("store-a"), b = Support.temporaryDirectory("store-b")
        defer { Support.remove(a); Support.remove(b) }
        let source = try Support.service(a)
        let name = "\(registry.host)/test/shared:1"
        _ = try await source.importLayers(Support.bigLayers, name: name)
        try await source.push(name)
        await source.shutdown()
        let target = try Support.service(b)
        // Same service (in-process sharing) and a second service on the same root (cross-instance).
        let second = try Support.service(b)
        async let p1 = target.pull(name)
        async let p2 = target.pull(name)
        async let p3 = second.pull(name)
        let results = try await [p1, p2, p3]
        #expect(Set(results.map(\.manifestDigest)).count == 1)
        #expect(target.store.check().isEmpty)
        await target.shutdown()
        await second.shutdown()
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var events: [PullEvent] = []
    func append(_ e: PullEvent) { lock.lock(); events.append(e); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return events.count }
}

final class Messages: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var lines: [String] = []
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
}

func source2(_ root: String) throws -> ImageService { try Support.service(root) }
