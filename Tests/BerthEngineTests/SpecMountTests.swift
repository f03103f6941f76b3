@testable import BerthEngine
import BerthOCI
import Testing

@Suite("Spec builder: mounts")
struct SpecMountTests {
    func build(
        _ configure: (inout ContainerConfiguration) -> Void = { _ in },
        inputs adjust: (inout SpecInputs) -> Void = { _ in }
    ) throws(EngineError) -> [Spec.Mount] {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        configure(&request)
        return try SpecBuilder.build(specInputs(request, rootfs: rootfs.path, configure: adjust), host: specTestHost)
            .mounts ?? []
    }

    @Test("docker's default mounts in docker's order, /dev/shm sized 64 MiB or --shm-size")
    func defaults() throws {
        let mounts = try build()
        #expect(
            mounts.map(\.destination) == [
                "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
            ])
        #expect(
            mounts[2]
                == Spec.Mount(
                    destination: "/dev/pts", type: "devpts", source: "devpts",
                    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]))
        #expect(mounts[3].options == ["nosuid", "noexec", "nodev", "ro"])
        #expect(mounts[4].type == "cgroup" && mounts[4].options?.contains("ro") == true)
        #expect(mounts[6].options == ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])
        #expect(try build { $0.shmSize = 1 << 30 }.last?.options?.last == "size=1073741824")
        #expect(invalidReason { _ = try build { $0.shmSize = -1 } } == "SHM size can not be less than 0")
    }

    @Test("managed files are rprivate binds, read-only with --read-only")
    func managedFiles() throws {
        let files = ["/etc/hosts": "/var/lib/berth/c/hosts", "/etc/resolv.conf": "/var/lib/berth/c/resolv.conf"]
        let mounts = try build(inputs: { $0.managedFiles = files })
        #expect(
            mounts.contains(
                Spec.Mount(
                    destination: "/etc/hosts", type: "bind", source: "/var/lib/berth/c/hosts",
                    options: ["rbind", "rprivate"])))
        let readOnly = try build({ $0.readonlyRootfs = true }, inputs: { $0.managedFiles = files })
        #expect(readOnly.first { $0.destination == "/etc/resolv.conf" }?.options == ["rbind", "ro", "rprivate"])
        // The user's own /etc/hosts replaces the engine's instead of clashing with it.
        let host = SpecScratchDirectory("bind")
        host.write("hosts", "10.0.0.1 mine\n")
        let own = try build(
            { $0.mounts = [.init(type: .bind, source: host.path + "/hosts", target: "/etc/hosts")] },
            inputs: { $0.managedFiles = files })
        #expect(own.filter { $0.destination == "/etc/hosts" }.map(\.source) == [host.path + "/hosts"])
        #expect(own.contains { $0.destination == "/etc/resolv.conf" })
    }

    @Test("binds: rbind, ro, propagation default rprivate; the source must exist")
    func binds() throws {
        let host = SpecScratchDirectory("bind")
        var bind = ContainerConfiguration.MountRequest(
            type: .bind, source: host.path + "/", target: "/data/", readOnly: true)
        bind.propagation = "private"
        let mounts = try build { $0.mounts = [bind, .init(type: .bind, source: host.path, target: "/other")] }
        #expect(
            mounts.contains(
                Spec.Mount(destination: "/data", type: "bind", source: host.path, options: ["rbind", "ro", "private"])))
        #expect(
            mounts.contains(
                Spec.Mount(destination: "/other", type: "bind", source: host.path, options: ["rbind", "rprivate"])))
        var nonRecursive = ContainerConfiguration.MountRequest(type: .bind, source: host.path, target: "/nr")
        nonRecursive.options = ["bind"]
        #expect(try build { $0.mounts = [nonRecursive] }.last?.options == ["bind", "rprivate"])
        #expect(
            invalidReason {
                _ = try build { $0.mounts = [.init(type: .bind, source: host.path + "/missing", target: "/m")] }
            } == "bind source path does not exist: \(host.path)/missing")
        #expect(
            invalidReason { _ = try build { $0.mounts = [.init(type: .bind, source: host.path, target: "relative")] } }?
                .contains("must be absolute") == true)
        #expect(
            invalidReason { _ = try build { $0.mounts = [.init(type: .bind, source: host.path, target: "/x/..")] } }?
                .contains("destination can't be '/'") == true)
    }

    @Test("shared and slave binds need a shared (or slave) source and set the root's propagation")
    func propagation() throws {
        let table = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
            30 22 0:26 / /srv rw,relatime master:7 - ext4 /dev/vdb rw
            31 22 0:27 / /private\\040dir rw,relatime - tmpfs tmpfs rw
            """
        let bytes = Array(table.utf8)
        #expect(
            BindPropagation.hostMount(of: "/srv/data", in: bytes)
                == .init(mountPoint: "/srv", optionalFields: ["master:7"]))
        #expect(BindPropagation.hostMount(of: "/srvx", in: bytes)?.mountPoint == "/")
        #expect(
            BindPropagation.hostMount(of: "/private dir/x", in: bytes)
                == .init(mountPoint: "/private dir", optionalFields: []))
        func bind(_ source: String, _ propagation: String) -> Spec.Mount {
            Spec.Mount(destination: "/d", type: "bind", source: source, options: ["rbind", propagation])
        }
        #expect(try BindPropagation.rootfsPropagation(for: [bind("/home", "rprivate")]) { bytes } == nil)
        #expect(try BindPropagation.rootfsPropagation(for: [bind("/home", "rshared")]) { bytes } == "shared")
        #expect(try BindPropagation.rootfsPropagation(for: [bind("/srv/x", "rslave")]) { bytes } == "rslave")
        #expect(
            try BindPropagation.rootfsPropagation(for: [bind("/home", "rslave"), bind("/home", "shared")]) { bytes }
                == "shared")
        #expect(
            invalidReason { _ = try BindPropagation.rootfsPropagation(for: [bind("/srv/x", "rshared")]) { bytes } }
                == "path /srv/x is mounted on /srv but it is not a shared mount")
        #expect(
            invalidReason { _ = try BindPropagation.rootfsPropagation(for: [bind("/private dir", "slave")]) { bytes } }
                == "path /private dir is mounted on /private dir but it is not a shared or slave mount")
    }

    @Test("volumes mount the directory the engine prepared, in request order")
    func volumes() throws {
        let host = SpecScratchDirectory("bind")
        let requests: [ContainerConfiguration.MountRequest] = [
            .init(type: .bind, source: host.path, target: "/b"),
            .init(type: .volume, source: "data", target: "/v", readOnly: true),
        ]
        let mounts = try build(
            { $0.mounts = requests }, inputs: { $0.volumeSources = [nil, "/var/lib/berth/volumes/data/_data"] })
        #expect(
            mounts.last
                == Spec.Mount(
                    destination: "/v", type: "bind", source: "/var/lib/berth/volumes/data/_data",
                    options: ["rbind", "ro"]))
        #expect(invalidReason { _ = try build { $0.mounts = requests } }?.contains("was not prepared") == true)
    }

    @Test("tmpfs: docker's defaults overridden by the request's options")
    func tmpfs() throws {
        let mounts = try build { $0.tmpfs = ["/run": "rw,size=64m,exec", "/cache": ""] }
        #expect(
            mounts.contains(
                Spec.Mount(
                    destination: "/run", type: "tmpfs", source: "tmpfs",
                    options: ["nosuid", "nodev", "rprivate", "rw", "size=64m", "exec"])))
        #expect(
            mounts.contains(
                Spec.Mount(
                    destination: "/cache", type: "tmpfs", source: "tmpfs",
                    options: ["noexec", "nosuid", "nodev", "rprivate"])))
        var request = ContainerConfiguration.MountRequest(type: .tmpfs, source: "", target: "/scratch")
        request.tmpfsSize = 128 << 20
        request.tmpfsMode = 0o1777
        #expect(
            try build { $0.mounts = [request] }.last?.options == [
                "noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=128m",
            ])
        #expect(
            invalidReason { _ = try build { $0.tmpfs = ["/run": "size=1m,bogus"] } }?.contains("invalid tmpfs option")
                == true)
    }

    @Test("duplicate destinations are an error, even after cleaning")
    func duplicates() throws {
        let host = SpecScratchDirectory("bind")
        #expect(
            invalidReason {
                _ = try build {
                    $0.mounts = [
                        .init(type: .bind, source: host.path, target: "/d"),
                        .init(type: .bind, source: host.path, target: "/d/"),
                    ]
                }
            } == "Duplicate mount point: /d")
        #expect(
            invalidReason {
                _ = try build {
                    $0.mounts = [.init(type: .bind, source: host.path, target: "/run")]; $0.tmpfs = ["/run": ""]
                }
            } == "Duplicate mount point: /run")
    }

    @Test("parents are mounted before children; a user /dev/shm replaces the default")
    func ordering() throws {
        let host = SpecScratchDirectory("bind")
        let mounts = try build {
            $0.mounts = [
                .init(type: .bind, source: host.path, target: "/a/b/c"),
                .init(type: .bind, source: host.path, target: "/a"),
                .init(type: .bind, source: host.path, target: "/dev/shm"),
            ]
        }
        let user = mounts.map(\.destination).filter { ["/a", "/a/b/c", "/dev/shm"].contains($0) }
        #expect(user == ["/a", "/dev/shm", "/a/b/c"])
        #expect(mounts.filter { $0.destination == "/dev/shm" }.count == 1)
        #expect(mounts.first { $0.destination == "/dev/shm" }?.type == "bind")
    }

    @Test("--read-only: the root is read-only; /proc, /dev and user mounts keep their mode")
    func readOnlyRoot() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        request.readonlyRootfs = true
        request.tmpfs = ["/tmp": ""]
        let spec = try SpecBuilder.build(specInputs(request, rootfs: rootfs.path), host: specTestHost)
        #expect(spec.root?.readonly == true)
        #expect(spec.mounts?.first { $0.destination == "/proc" }?.options?.contains("ro") == false)
        #expect(spec.mounts?.first { $0.destination == "/tmp" }?.options?.contains("ro") == false)
        #expect(spec.mounts?.first { $0.destination == "/sys" }?.options?.contains("ro") == true)
    }
}
