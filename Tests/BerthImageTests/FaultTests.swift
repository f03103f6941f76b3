import Foundation
import Testing
@testable import BerthImage

/// Bad registries and bad content: a clear error naming the image and the cause, no image registered,
/// no temporary files left, and `check()` finds the store consistent.
@Suite(.serialized) struct FaultTests {
    /// An OCI layout of the busybox image (exported by Berth) for the fake registry to serve, built once.
    static let layouts = LayoutCache()
    static var layout: String { get async throws { try await layouts.get() } }

    static func pull(
        mode: String, bearer: String? = nil, credentials: CredentialStore = CredentialStore(),
        platform: Platform? = nil, configure: (inout RegistryOptions) -> Void = { _ in }
    ) async throws -> (Result<ImageRecord, ImageError>, ContentStore) {
        let fake = try FakeRegistry(layout: try await layout, mode: mode, bearer: bearer)
        defer { fake.stop() }
        let root = Support.temporaryDirectory("fault-\(mode)")
        let service = try Support.service(root) { options in
            options.credentials = credentials
            options.readTimeout = .seconds(2)
            options.attempts = 3
            configure(&options)
        }
        let result: Result<ImageRecord, ImageError>
        do { result = .success(try await service.pull("\(fake.host)/test/image:latest", platform: platform)) } catch {
            result = .failure(error)
        }
        await service.shutdown()
        return (result, service.store)
    }

    /// The failure is reported for the image, nothing is registered and the store is clean.
    static func expectCleanFailure(
        _ outcome: (Result<ImageRecord, ImageError>, ContentStore), _ matches: (ImageError) -> Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let (result, store) = outcome
        defer { Support.remove(store.root) }
        guard case .failure(let error) = result else {
            Issue.record("pull succeeded but should have failed", sourceLocation: sourceLocation)
            return
        }
        #expect(
            error.description.contains("test/image:latest"), "error names the image: \(error)",
            sourceLocation: sourceLocation)
        #expect(matches(error.cause), "unexpected cause: \(error)", sourceLocation: sourceLocation)
        #expect(store.images().isEmpty, sourceLocation: sourceLocation)
        #expect(store.check().isEmpty, "store: \(store.check())", sourceLocation: sourceLocation)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/snapshots")) ?? []
        #expect(leftovers.isEmpty, "snapshots left: \(leftovers)", sourceLocation: sourceLocation)
    }

    @Test func servesNormally() async throws {
        let (result, store) = try await Self.pull(mode: "ok")
        defer { Support.remove(store.root) }
        #expect(try result.get().layers.count == 1)
        #expect(store.check().isEmpty)
    }

    @Test func corruptBlobIsRejected() async throws {
        Self.expectCleanFailure(try await Self.pull(mode: "corrupt")) { error in
            if case .digestMismatch = error { return true }
            if case .corruptLayer = error { return true }  // the flipped byte may break gzip first
            return false
        }
    }

    @Test func truncatedBlobIsRejected() async throws {
        Self.expectCleanFailure(try await Self.pull(mode: "truncate")) { error in
            if case .transport = error { return true }
            if case .sizeMismatch = error { return true }
            return false
        }
    }

    @Test func brokenDownloadResumesWithRange() async throws {
        let (result, store) = try await Self.pull(mode: "truncate-resume")
        defer { Support.remove(store.root) }
        #expect(try result.get().layers.count == 1)
        #expect(store.check().isEmpty)
    }

    @Test func serverErrorsAreRetriedThenReported() async throws {
        let (flaky, store) = try await Self.pull(mode: "flaky")  // 500, then 429, then success
        Support.remove(store.root)
        #expect(throws: Never.self) { try flaky.get() }
        Self.expectCleanFailure(try await Self.pull(mode: "fail500")) { error in
            if case .registry(let status, _, let message) = error {
                return status == 500 && message.contains("injected failure")
            }
            return false
        }
    }

    @Test func hangingRegistryTimesOut() async throws {
        let start = ContinuousClock.now
        Self.expectCleanFailure(try await Self.pull(mode: "hang") { $0.attempts = 1 }) { error in
            if case .transport(_, let cause) = error { return cause.contains("in time") }
            return false
        }
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func unknownMediaTypeIsRejected() async throws {
        Self.expectCleanFailure(try await Self.pull(mode: "badtype")) { error in
            if case .unsupportedMediaType(let type, _) = error { return type.contains("example.unknown") }
            return false
        }
    }

    @Test(.enabled(if: Platform.host.architecture == "amd64")) func indexSelectsHostPlatform() async throws {
        let (result, store) = try await Self.pull(mode: "index")
        defer { Support.remove(store.root) }
        let record = try result.get()
        #expect(record.indexDigest != nil)
        #expect(record.platform.architecture == "amd64")
        #expect(store.check().isEmpty)
        // The other entries point at manifests the registry does not have: choosing one fails, by name.
        let (arm, armStore) = try await Self.pull(mode: "index", platform: try Platform(parsing: "linux/arm64"))
        Support.remove(armStore.root)
        guard case .failure(let error) = arm, case .notFound = error.cause else {
            Issue.record("arm64 should 404: \(arm)"); return
        }
    }

    @Test func indexWithoutHostPlatform() async throws {
        Self.expectCleanFailure(try await Self.pull(mode: "foreign-index")) { error in
            if case .noMatchingPlatform(_, let available) = error { return available.contains("linux/s390x") }
            return false
        }
        // Asking for a platform the index has works.
        let (result, store) = try await Self.pull(
            mode: "foreign-index", platform: Platform(os: "linux", architecture: "s390x"))
        defer { Support.remove(store.root) }
        #expect(try result.get().layers.count == 1)
    }

    @Test func bearerTokenFlow() async throws {
        let credentials = CredentialStore(entries: ["PLACEHOLDER": Credentials(username: "u", password: "p")])
        _ = credentials
        let fake = try FakeRegistry(layout: try await Self.layout, mode: "ok", bearer: "tokenuser:tokenpass")
        defer { fake.stop() }
        let root = Support.temporaryDirectory("bearer")
        defer { Support.remove(root) }
        // Without credentials the token endpoint refuses.
        let anonymous = try Support.service(root)
        await #expect { _ = try await anonymous.pull("\(fake.host)/test/image:latest") } throws: { error in
            guard case .pulling(_, .authentication(let why)) = error as? ImageError else { return false }
            return why.contains("token endpoint")
        }
        await anonymous.shutdown()
        let authed = try Support.service(root) {
            $0.credentials = CredentialStore(entries: [
                fake.host: Credentials(username: "tokenuser", password: "tokenpass")
            ])
        }
        let record = try await authed.pull("\(fake.host)/test/image:latest")
        #expect(record.layers.count == 1)
        await authed.shutdown()
    }

    /// A store on a 700 kB tmpfs cannot hold the 1.1 MB busybox layer: ENOSPC, named, and nothing left behind.
    @Test(.enabled(if: Support.isRoot)) func fullDiskLeavesStoreClean() async throws {
        let fake = try FakeRegistry(layout: try await Self.layout)
        defer { fake.stop() }
        let mountpoint = Support.temporaryDirectory("full")
        try Support.mustRun(["mount", "-t", "tmpfs", "-o", "size=700k", "berth-test-full", mountpoint])
        defer { _ = try? Support.run(["umount", mountpoint]); Support.remove(mountpoint) }
        let service = try Support.service(mountpoint + "/store")
        await #expect { _ = try await service.pull("\(fake.host)/test/image:latest") } throws: { error in
            guard let e = error as? ImageError, case .pulling(let image, let cause) = e else { return false }
            if case .system(let s) = cause { return image.contains("test/image") && s.errno == ENOSPC }
            return false
        }
        await service.shutdown()
        #expect(service.store.images().isEmpty)
        #expect(service.store.check().isEmpty, "\(service.store.check())")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/store/snapshots").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/store/ingest").isEmpty)
    }

    @Test func hostileLayerLeavesNoImage() async throws {
        // A layer with ../ inside an otherwise valid image: import fails, nothing registered.
        let dir = Support.temporaryDirectory("hostile")
        defer { Support.remove(dir) }
        var bytes: [UInt8] = []
        let writer = TarWriter { bytes += $0 }
        try writer.addEntry("ok", type: "0", bytes: [1])
        try writer.addEntry("../../escape", type: "0", bytes: [1])
        try writer.finish()
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/layer.tar"))
        let root = dir + "/store"
        let service = try Support.service(root)
        await #expect {
            _ = try await service.importLayers([dir + "/layer.tar"], name: "example.com/hostile:1")
        } throws: { error in
            guard case .pulling(let image, .hostileLayer(_, let path, _)) = error as? ImageError else { return false }
            return image.contains("hostile") && path == "../../escape"
        }
        #expect(service.store.images().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/escape"))
        #expect(!FileManager.default.fileExists(atPath: root + "/escape"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/snapshots")
        #expect(leftovers.isEmpty)
        await service.shutdown()
    }
}

actor LayoutCache {
    private var task: Task<String, any Error>?
    func get() async throws -> String {
        if let task { return try await task.value }
        let task = Task { () async throws -> String in
            let dir = "/tmp/berth-image-tests/fake-layout"
            if FileManager.default.fileExists(atPath: dir + "/index.json") { return dir }
            let store = Support.temporaryDirectory("layout-store")
            defer { Support.remove(store) }
            let service = try Support.service(store)
            _ = try await service.importLayers(Support.busyboxLayers, name: "127.0.0.1/test/image:latest")
            try service.exportLayout(["127.0.0.1/test/image:latest"], to: dir)
            await service.shutdown()
            return dir
        }
        self.task = task
        return try await task.value
    }
}
