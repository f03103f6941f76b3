// swift-tools-version: 6.1
// Berth: one package, one library per layer, thin executables.
//
//   BerthOCI (runtime-spec types, no dependencies)   BerthJSON (the one JSON: tree, parser, writer, Codable)
//      │
//   CBerthShim ── BerthOS ── BerthRuntime ── berth-runtime (runc's command line)
//                    │
//                    ├──── BerthImage (registry client, content store, unpack, snapshots)
//                    ├──── BerthDNS (the embedded resolver's codec and rules, no Foundation; the monitor links it)
//                    ├──── BerthNetwork (network namespaces, CNI, port publishing; re-exports BerthDNS)
//                    │        └── BerthEngine (containers from images on any OCI runtime binary) ── berth-monitor
//                    │            │ (also on BerthImage and BerthOCI; never on BerthRuntime)
//                    │            └── BerthDockerAPI (the Docker Engine API on a unix socket or TLS)
//                    └──── BerthStore ── BerthAPI (Kubernetes-compatible API server)
//                                                  └── BerthControl (scheduler, controllers, hollow nodes)
//   berth: the docker-like CLI and the daemons, on top of the libraries above.
import PackageDescription

let package = Package(
    name: "Berth",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
        .executable(name: "berth-monitor", targets: ["berth-monitor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Only what Swift cannot call, and the async-signal-safe path between clone and exec.
        .target(name: "CBerthShim"),
        // libseccomp from Debian (libseccomp-dev).
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        // Owned descriptors, one errno funnel with typed errors, path resolution inside a root.
        .target(name: "BerthOS", dependencies: ["CBerthShim"]),
        // The OCI runtime-spec's config.json as Codable values: what the runtime reads and the engine writes.
        .target(name: "BerthOCI"),
        // The one JSON of every layer, without Foundation: a tree (`JSON`), a strict parser, a writer with
        // sorted keys, a Codable decoder and encoder over the tree. The API server's objects, the runtime's
        // config.json, CNI configurations, the resolver's container records. No dependencies, so the runtime
        // and the monitor link it; Foundation's coders cost more in Swift type lookups than the work.
        .target(name: "BerthJSON"),
        // The OCI runtime: validation, planning, and the container lifecycle.
        .target(name: "BerthRuntime", dependencies: ["BerthOCI", "BerthOS", "BerthJSON", "CBerthShim", "CSeccomp"]),
        // runc's command line. Kept free of NIO and full Foundation so it starts fast.
        .executableTarget(
            name: "berth-runtime",
            dependencies: ["BerthRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            // Release: a fully static, non-PIE executable. The dynamic loader and its ~39,000 relocations
            // cost ~3.5 ms per start, and the runtime starts twice per container (itself and the init).
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),

        // zlib and libzstd from Debian (zlib1g-dev, libzstd-dev): streamed layer (de)compression.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        // libc headers the Glibc module omits (sys/xattr.h).
        .systemLibrary(name: "CImageSys"),
        // Images: references, registry client, content store, unpack, snapshots.
        .target(name: "BerthImage", dependencies: [
            "BerthOS", "BerthJSON", "CBerthShim", "CZlib", "CZstd", "CImageSys",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The embedded DNS server's message codec and docker's name rules (and IPv4Address), on BerthOS
        // only: no Foundation, so that the monitor serving them stays small. BerthNetwork re-exports it.
        .target(name: "BerthDNS", dependencies: ["BerthOS", "BerthJSON"]),
        // Container networking: pinned network namespaces, CNI plugins (spec 1.0), port publishing.
        .target(name: "BerthNetwork", dependencies: ["BerthOS", "BerthDNS", "BerthJSON", "CBerthShim"]),
        // The engine: containers from images, run by any OCI runtime's command line under a monitor.
        .target(name: "BerthEngine", dependencies: [
            "BerthOCI", "BerthOS", "BerthJSON", "BerthImage", "BerthNetwork", "CBerthShim",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // One small process per container (conmon's job): the init's parent, its stdio, logs and exit code,
        // and the embedded DNS server of containers on user-defined networks. Kept to the C library,
        // BerthOS and BerthDNS (no Foundation: linking BerthNetwork brought FoundationEssentials, a 24 instead
        // of 11 MB static binary and 1.7 MB more resident per monitor) so that it stays small.
        .executableTarget(
            name: "berth-monitor",
            dependencies: ["BerthOS", "BerthDNS", "CBerthShim"],
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),
        // The Docker Engine API on a unix socket over the engine, so the docker CLI and SDKs work. A plain
        // SwiftNIO HTTP/1.1 server rather than Hummingbird: `attach` hijacks the connection after its
        // `101 UPGRADED` and needs the channel pipeline itself to take the HTTP codecs out.
        .target(name: "BerthDockerAPI", dependencies: [
            "BerthEngine", "BerthImage", "BerthOS", "CBerthShim",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Revisioned key-value store with watch: SQLite (embedded) or etcd.
        .target(name: "BerthStore", dependencies: [
            "BerthJSON",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // ICU data for full Foundation (which GRDB and Yams pull in): the toolchain's symbol defined with
        // only the locale-independent data and the root/en locales, 4.9 instead of 34 MB in the static
        // `berth`. Generated by scripts/gen-icu-subset.py (CI checks it is current).
        .target(name: "CBerthICUData", cSettings: [.headerSearchPath("data")]),
        // The Kubernetes-compatible API server.
        .target(name: "BerthAPI", dependencies: [
            "BerthJSON", "BerthStore", "CBerthICUData",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The control plane's run-once half: scheduler, controllers, node lifecycle, and hollow nodes.
        .target(name: "BerthControl", dependencies: [
            "BerthAPI", "BerthStore",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthRuntime", "BerthImage", "BerthEngine", "BerthNetwork", "BerthAPI", "BerthControl", "BerthDockerAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // Release: one fully static executable to copy onto a host, as k3s and containerd ship. The C
            // libraries (SQLite, zstd, zlib, libseccomp, libstdc++) link from Debian's .a files; BoringSSL
            // is compiled in by swift-nio-ssl and swift-crypto. `make release` strips it (symbols kept beside).
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),

        .testTarget(name: "BerthOSTests", dependencies: ["BerthOS"]),
        .testTarget(name: "BerthJSONTests", dependencies: ["BerthJSON"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthRuntime", "BerthOS", "BerthJSON", "CBerthShim"]),
        .testTarget(name: "BerthImageTests", dependencies: ["BerthImage"]),
        .testTarget(name: "BerthNetworkTests", dependencies: ["BerthNetwork", "BerthDNS", "BerthOS"]),
        .testTarget(name: "BerthEngineTests", dependencies: ["BerthEngine", "BerthImage", "BerthNetwork", "BerthOCI", "BerthOS"]),
        // The CLI's own logic (its hand-written hot-path parser held to ArgumentParser's results).
        .testTarget(name: "BerthCLITests", dependencies: ["berth"]),
        // BerthControl for the garbage collector, which finishes the deletes the API tests make.
        .testTarget(name: "BerthAPITests", dependencies: ["BerthAPI", "BerthStore", "BerthControl"]),
        .testTarget(name: "BerthDockerAPITests", dependencies: [
            "BerthDockerAPI", "BerthEngine", "BerthImage", "BerthOS", .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "BerthStoreTests", dependencies: ["BerthStore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "BerthControlTests", dependencies: [
            "BerthControl", "BerthAPI", "BerthStore", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ]
)
