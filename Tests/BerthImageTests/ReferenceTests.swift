import Testing
@testable import BerthImage

@Suite struct ReferenceTests {
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("index.docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("127.0.0.1:5000/x_y/a-b.c__d:T.1-x", "127.0.0.1:5000/x_y/a-b.c__d:T.1-x", "127.0.0.1:5000/x_y/a-b.c__d:T.1-x"),
        (
            "quay.io/org/img@sha256:" + String(repeating: "ab", count: 32),
            "quay.io/org/img@sha256:" + String(repeating: "ab", count: 32),
            "quay.io/org/img@sha256:" + String(repeating: "ab", count: 32)
        ),
        (
            "reg.example:443/a:tag@sha256:" + String(repeating: "0", count: 64),
            "reg.example:443/a:tag@sha256:" + String(repeating: "0", count: 64),
            "reg.example:443/a:tag@sha256:" + String(repeating: "0", count: 64)
        ),
    ])
    func normalises(input: String, full: String, familiar: String) throws {
        let ref = try Reference(parsing: input)
        #expect(ref.description == full)
        #expect(ref.familiar == familiar)
    }

    @Test(arguments: [
        "", "Busybox", "a//b", "a/b:", "a:b:c/d", "-a/b", "a@sha256:1234", "host:99999/a", "a/b:-tag",
        "a/b:" + String(repeating: "t", count: 129), "a/B",
    ])
    func rejects(input: String) {
        #expect(throws: ImageError.self) { try Reference(parsing: input) }
    }

    @Test func registryEndpointAndManifestReference() throws {
        let hub = try Reference(parsing: "alpine")
        #expect(hub.endpointHost == "registry-1.docker.io")
        #expect(hub.manifestReference == "latest")
        let pinned = try Reference(parsing: "127.0.0.1:5000/a@sha256:" + String(repeating: "1", count: 64))
        #expect(pinned.manifestReference.hasPrefix("sha256:"))
        #expect(pinned.tag == nil)
    }

    @Test func platformParsingAndSelection() throws {
        #expect(try Platform(parsing: "linux/x86_64") == Platform(os: "linux", architecture: "amd64"))
        #expect(try Platform(parsing: "linux/arm64/v8").description == "linux/arm64")
        #expect(throws: ImageError.self) { try Platform(parsing: "linux") }
        let d = { (arch: String, variant: String?) in
            Descriptor(
                mediaType: MediaType.ociManifest, digest: Digest.sha256(Array(arch.utf8) + Array((variant ?? "").utf8)),
                size: 1,
                platform: Platform(os: "linux", architecture: arch, variant: variant))
        }
        let index = Index(manifests: [d("arm", "v6"), d("arm", "v7"), d("amd64", nil), d("arm64", "v8")])
        #expect(
            Platform.select(from: index, for: Platform(os: "linux", architecture: "arm", variant: "v7"))
                == index.manifests[1])
        #expect(Platform.select(from: index, for: Platform(os: "linux", architecture: "amd64")) == index.manifests[2])
        #expect(Platform.select(from: index, for: Platform(os: "linux", architecture: "arm64")) == index.manifests[3])
        #expect(Platform.select(from: index, for: Platform(os: "linux", architecture: "s390x")) == nil)
    }

    @Test func chainIDsFollowTheImageSpec() {
        let a = Digest.sha256(Array("a".utf8)), b = Digest.sha256(Array("b".utf8))
        let chain = ImageConfig.chainIDs([a, b])
        #expect(chain[0] == a)
        #expect(chain[1] == Digest.sha256(Array("\(a) \(b)".utf8)))
    }

    @Test func authChallengeAndConfigJSON() throws {
        let c = AuthChallenge.parse(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
        )
        #expect(c?.scheme == "bearer")
        #expect(c?.parameters["realm"] == "https://auth.docker.io/token")
        #expect(c?.parameters["scope"] == "repository:library/busybox:pull")
        #expect(AuthChallenge.parse(#"Basic realm="x""#)?.scheme == "basic")
        let store = try CredentialStore.parse(
            Array(
                #"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"127.0.0.1:5000":{"username":"u","password":"p"}}}"#
                    .utf8))
        #expect(store.credentials(for: "docker.io") == Credentials(username: "user", password: "pa:ss"))
        #expect(store.credentials(for: "127.0.0.1:5000") == Credentials(username: "u", password: "p"))
    }

    @Test func manifestDocumentsByMediaType() throws {
        let manifest =
            #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1},"layers":[]}"#
        guard case .manifest(let m) = try ManifestDocument.parse(Array(manifest.utf8), mediaType: nil, what: "t") else {
            Issue.record("not a manifest"); return
        }
        #expect(m.mediaType == MediaType.dockerManifest)
        #expect(throws: ImageError.self) {
            try ManifestDocument.parse(
                Array(#"{"schemaVersion":2,"mediaType":"application/x-unknown"}"#.utf8), mediaType: nil, what: "t")
        }
        #expect(throws: ImageError.self) {
            try ManifestDocument.parse(Array(#"{"schemaVersion":1,"fsLayers":[]}"#.utf8), mediaType: nil, what: "t")
        }
    }
}
