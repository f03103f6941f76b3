#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// Networks, volumes, events, images beyond pull, `system df` and `login`, as a docker user meets them:
/// the real docker CLI against `berth engine`, on the image the harness builds from busybox.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && dockerCLI != nil, "runs containers and the docker CLI: needs real root and docker"))
final class DockerObjectCLITests {
    let box: DaemonBox
    /// User networks made here, removed at the end (their bridges and rules are known only to this root).
    var networks: [String] = []

    init() throws { box = try DaemonBox("objects") }
    deinit {
        if let ids = try? box.berthCLI(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? box.berthCLI(["rm", "-f"] + ids)
        }
        for name in networks { _ = try? box.berthCLI(["network", "rm", name]) }
        box.tearDown()
    }

    /// A name unique to this run, so that bridges of other roots never clash.
    func uniqueName(_ prefix: String) -> String { "\(prefix)\(UInt32.random(in: 0...UInt32.max) % 100000)" }

    func lines(_ output: ChildProcess.Output) -> [String] { output.stdoutText.split(separator: "\n").map(String.init) }

    // MARK: Networks

    @Test func predefinedNetworksAreListedAndCannotBeRemoved() throws {
        let listed = try box.docker(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"])
        #expect(listed.status == .exited(0), "\(listed.stderrText)")
        #expect(
            Set(lines(listed)).isSuperset(of: ["bridge bridge local", "host host local", "none null local"]),
            "\(listed.stdoutText)")
        let bridge = try box.docker(["network", "rm", "bridge"])
        #expect(bridge.status != .exited(0))
        #expect(
            bridge.stderrText.contains("bridge is a pre-defined network and cannot be removed"), "\(bridge.stderrText)")
        let missing = try box.docker(["network", "inspect", "nosuch"])
        #expect(missing.status == .exited(1))
        #expect(missing.stderrText.contains("network nosuch not found"), "\(missing.stderrText)")
        let builtin = try box.docker(["network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin"])
        #expect(Set(lines(builtin)) == ["bridge", "host", "none"], "\(builtin.stdoutText)")
        // The host's CNI configuration directory may add networks of its own: custom, never predefined.
        let custom = try box.docker(["network", "ls", "--format", "{{.Name}}", "--filter", "type=custom"])
        #expect(Set(lines(custom)).isDisjoint(with: ["bridge", "host", "none"]), "\(custom.stdoutText)")
    }

    @Test func containersOnAUserNetworkReachEachOtherByNameAndTheNetworkGoesOnlyWhenUnused() throws {
        let name = uniqueName("dn")
        let created = try box.docker(["network", "create", "--label", "suite=objects", name])
        #expect(created.status == .exited(0), "\(created.stderrText)")
        networks.append(name)
        let id = created.stdoutText.trimmed
        #expect(id.count == 64)
        let again = try box.docker(["network", "create", name])
        #expect(again.status != .exited(0))
        #expect(again.stderrText.contains("network with name \(name) already exists"), "\(again.stderrText)")
        let shown = try box.docker([
            "network", "inspect", "--format",
            "{{.Id}} {{.Driver}} {{.Scope}} {{index .Labels \"suite\"}} {{len .IPAM.Config}}", name,
        ])
        #expect(shown.stdoutText.trimmed == "\(id) bridge local objects 1", "\(shown.stdoutText)\(shown.stderrText)")
        let filtered = try box.docker(["network", "ls", "--format", "{{.Name}}", "--filter", "label=suite=objects"])
        #expect(lines(filtered) == [name], "\(filtered.stdoutText)\(filtered.stderrText)")

        let server = try box.docker(["run", "-d", "--network", name, "--name", "srv", box.image, "sleep", "60"])
        #expect(server.status == .exited(0), "\(server.stderrText)")
        let ping = try box.docker(["run", "--rm", "--network", name, box.image, "ping", "-c", "1", "-W", "5", "srv"])
        #expect(ping.status == .exited(0), "\(ping.stdoutText)\(ping.stderrText)")
        #expect(ping.stdoutText.contains("1 packets received"), "\(ping.stdoutText)")
        let members = try box.docker(["network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", name])
        #expect(members.stdoutText.trimmed == "srv", "\(members.stdoutText)\(members.stderrText)")

        // In use: dockerd's 403 "has active endpoints".
        let busy = try box.docker(["network", "rm", name])
        #expect(busy.status != .exited(0))
        #expect(busy.stderrText.contains("has active endpoints"), "\(busy.stderrText)")
        #expect(try box.docker(["rm", "-f", "srv"]).status == .exited(0))
        let removed = try box.docker(["network", "rm", name])
        #expect(removed.status == .exited(0), "\(removed.stderrText)")
        #expect(try box.docker(["network", "ls", "-q", "--filter", "name=\(name)"]).stdoutText.isEmpty)
    }

    @Test func aRunningContainerIsConnectedAndDisconnected() throws {
        let front = uniqueName("df"), back = uniqueName("db")
        for name in [front, back] {
            #expect(try box.docker(["network", "create", name]).status == .exited(0))
            networks.append(name)
        }
        #expect(
            try box.docker(["run", "-d", "--network", front, "--name", "multi", box.image, "sleep", "60"]).status
                == .exited(0))
        let connected = try box.docker(["network", "connect", "--alias", "web", back, "multi"])
        #expect(connected.status == .exited(0), "\(connected.stderrText)")
        let joined = try box.docker([
            "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "multi",
        ])
        #expect(
            Set(joined.stdoutText.split(separator: " ").map { $0.trimmed }.filter { !$0.isEmpty }) == [front, back],
            "\(joined.stdoutText)")
        // The alias answers on the network it was given for.
        let ping = try box.docker(["run", "--rm", "--network", back, box.image, "ping", "-c", "1", "-W", "5", "web"])
        #expect(ping.status == .exited(0), "\(ping.stdoutText)\(ping.stderrText)")
        let twice = try box.docker(["network", "connect", back, "multi"])
        #expect(twice.status != .exited(0))

        let disconnected = try box.docker(["network", "disconnect", back, "multi"])
        #expect(disconnected.status == .exited(0), "\(disconnected.stderrText)")
        let left = try box.docker([
            "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "multi",
        ])
        #expect(left.stdoutText.trimmed == front, "\(left.stdoutText)")
        let members = try box.docker(["network", "inspect", "--format", "{{len .Containers}}", back])
        #expect(members.stdoutText.trimmed == "0")
        let notThere = try box.docker(["network", "disconnect", back, "multi"])
        #expect(notThere.status != .exited(0))

        // Prune takes the unused network, not the one `multi` is on.
        let pruned = try box.docker(["network", "prune", "-f"])
        #expect(pruned.status == .exited(0), "\(pruned.stderrText)")
        #expect(pruned.stdoutText.contains(back) && !pruned.stdoutText.contains(front), "\(pruned.stdoutText)")
        let remaining = try box.docker(["network", "ls", "--format", "{{.Name}}"])
        #expect(lines(remaining).contains(front) && !lines(remaining).contains(back))
    }

    // MARK: Volumes

    @Test func aVolumeIsSharedBetweenContainersAndRemovedOnlyWhenUnused() throws {
        let created = try box.docker(["volume", "create", "--label", "suite=objects", "shared"])
        #expect(created.status == .exited(0), "\(created.stderrText)")
        #expect(created.stdoutText.trimmed == "shared")
        let wrote = try box.docker([
            "run", "--rm", "--network", "none", "-v", "shared:/data", box.image, "sh", "-c",
            "echo hello > /data/greeting",
        ])
        #expect(wrote.status == .exited(0), "\(wrote.stderrText)")
        let read = try box.docker([
            "run", "--rm", "--network", "none", "-v", "shared:/data:ro", box.image, "cat", "/data/greeting",
        ])
        #expect(read.stdoutText == "hello\n", "\(read.stderrText)")

        let inspected = try box.docker([
            "volume", "inspect", "--format",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}} {{index .Labels \"suite\"}}", "shared",
        ])
        #expect(
            inspected.stdoutText.trimmed == "shared local local \(box.root)/volumes/shared/_data objects",
            "\(inspected.stdoutText)\(inspected.stderrText)")
        let listed = try box.docker([
            "volume", "ls", "--format", "{{.Driver}} {{.Name}}", "--filter", "label=suite=objects",
        ])
        #expect(lines(listed) == ["local shared"], "\(listed.stdoutText)\(listed.stderrText)")

        #expect(
            try box.docker([
                "run", "-d", "--name", "holder", "--network", "none", "-v", "shared:/data", box.image, "sleep", "60",
            ]).status == .exited(0))
        let inUse = try box.docker(["volume", "rm", "shared"])
        #expect(inUse.status != .exited(0))
        #expect(inUse.stderrText.contains("volume is in use"), "\(inUse.stderrText)")
        let dangling = try box.docker(["volume", "ls", "-q", "--filter", "dangling=true"])
        #expect(!lines(dangling).contains("shared"))
        #expect(try box.docker(["rm", "-f", "holder"]).status == .exited(0))
        let removed = try box.docker(["volume", "rm", "shared"])
        #expect(removed.status == .exited(0), "\(removed.stderrText)")
        let gone = try box.docker(["volume", "inspect", "shared"])
        #expect(gone.status != .exited(0))
        #expect(gone.stderrText.contains("no such volume"), "\(gone.stderrText)")
    }

    @Test func pruneTakesAnonymousVolumesAndWithAllNamedOnesToo() throws {
        #expect(try box.docker(["volume", "create", "keep"]).status == .exited(0))
        #expect(
            try box.docker(["run", "--name", "anon", "--network", "none", "-v", "/scratch", box.image, "true"]).status
                == .exited(0))
        let anonymous = try box.docker(["inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", "anon"]).stdoutText
            .trimmed
        #expect(anonymous.count == 64, "\(anonymous)")
        // Still mounted by the stopped container: nothing to prune.
        #expect(!(try box.docker(["volume", "prune", "-f"]).stdoutText.contains(anonymous)))
        #expect(try box.docker(["rm", "anon"]).status == .exited(0))
        let pruned = try box.docker(["volume", "prune", "-f"])
        #expect(pruned.status == .exited(0), "\(pruned.stderrText)")
        #expect(pruned.stdoutText.contains(anonymous) && !pruned.stdoutText.contains("keep"), "\(pruned.stdoutText)")
        let all = try box.docker(["volume", "prune", "-af"])
        #expect(all.stdoutText.contains("keep"), "\(all.stdoutText)\(all.stderrText)")
        #expect(try box.docker(["volume", "ls", "-q"]).stdoutText.isEmpty)
    }

    // MARK: Events

    @Test func pastEventsBetweenSinceAndUntilShowAContainersLifeAndTheStoresOtherObjects() throws {
        let since = Int(time(nil)) - 1
        let network = uniqueName("de")
        #expect(
            try box.docker(["run", "--rm", "--network", "none", "--name", "ev", box.image, "true"]).status == .exited(0)
        )
        #expect(try box.docker(["network", "create", network]).status == .exited(0))
        networks.append(network)
        #expect(try box.docker(["network", "rm", network]).status == .exited(0))
        #expect(try box.docker(["volume", "create", "evvol"]).status == .exited(0))
        #expect(
            try box.docker(["run", "--rm", "--network", "none", "-v", "evvol:/v", box.image, "true"]).status
                == .exited(0))
        #expect(try box.docker(["volume", "rm", "evvol"]).status == .exited(0))
        #expect(try box.docker(["tag", box.image, "test/evtag:2"]).status == .exited(0))
        #expect(try box.docker(["rmi", "test/evtag:2"]).status == .exited(0))
        let until = Int(time(nil)) + 1
        // The stream ends by itself once `until` has passed.
        while Int(time(nil)) <= until { usleep(100_000) }

        let containerEvents = try box.docker([
            "events", "--since", String(since), "--until", String(until),
            "--filter", "container=ev", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        #expect(containerEvents.status == .exited(0), "\(containerEvents.stderrText)")
        #expect(
            lines(containerEvents) == [
                "container create ev", "container start ev", "container die ev", "container destroy ev",
            ],
            "\(containerEvents.stdoutText)")
        let others = try box.docker([
            "events", "--since", String(since), "--until", String(until), "--filter", "type=network",
            "--filter", "type=volume", "--filter", "type=image", "--format", "{{.Type}} {{.Action}}",
        ])
        let seen = lines(others)
        for expected in [
            "network create", "network destroy", "volume create", "volume mount", "volume destroy", "image tag",
            "image untag",
        ] {
            #expect(seen.contains(expected), "\(expected) missing from \(seen)")
        }
        #expect(!seen.contains { $0.hasPrefix("container") })
        // The legacy fields dockerd still sends for containers.
        let json = try box.docker([
            "events", "--since", String(since), "--until", String(until), "--filter", "event=die", "--format",
            "{{json .}}",
        ])
        #expect(json.stdoutText.contains("\"status\":\"die\""), "\(json.stdoutText)")
        #expect(json.stdoutText.contains("\"from\":\"\(box.image)\""), "\(json.stdoutText)")
        #expect(json.stdoutText.contains("\"scope\":\"local\""), "\(json.stdoutText)")

        // The same file, read by the CLI beside the daemon.
        let cli = try box.berthCLI([
            "events", "--since", String(since), "--until", String(until), "--filter", "container=ev", "--format",
            "{{.Action}}",
        ])
        #expect(lines(cli) == ["create", "start", "die", "destroy"], "\(cli.stdoutText)\(cli.stderrText)")
    }

    @Test func aFollowedStreamShowsWhatTheBerthCLIDoesAndEndsWhenItsClientGoes() throws {
        let before = requestThreads()
        let output = box.base + "/events.out"
        // --since: what happens between the request and the stream's first look is not lost either.
        let watcher = try box.spawnDocker(
            [
                "events", "--since", String(Int(time(nil)) - 1), "--filter", "type=container",
                "--format", "{{.Action}} {{.Actor.Attributes.name}}",
            ], output: output)
        var watching = true
        defer { if watching { kill(watcher, SIGKILL); _ = try? ChildProcess.wait(watcher) } }
        // The stream is being served once its thread is there; what follows is then seen live.
        #expect(try box.eventually { self.requestThreads() == before + 1 }, "\(requestThreads())")
        let ran = try box.berthCLI(["run", "--rm", "--network", "none", "--name", "fromcli", box.image, "true"])
        #expect(ran.status == .exited(0), "\(ran.stderrText)")
        #expect(
            try box.eventually { ((try? FileSystem.readString(output)) ?? "").contains("destroy fromcli") },
            "\((try? FileSystem.readString(output)) ?? "")")
        let seen = ((try? FileSystem.readString(output)) ?? "").split(separator: "\n").map(String.init)
        #expect(seen == ["create fromcli", "start fromcli", "die fromcli", "destroy fromcli"], "\(seen)")
        kill(watcher, SIGTERM)
        _ = try ChildProcess.wait(watcher)
        watching = false
        // The serving thread notices its client left and ends.
        #expect(try box.eventually { self.requestThreads() == before }, "\(requestThreads()) request threads")
    }

    // MARK: Images

    @Test func anImageIsTaggedPushedRemovedPulledBackSavedAndLoaded() throws {
        let registry = try LocalRegistry(in: box.base)
        defer { registry.stop() }
        let remote = "\(registry.host)/test/objects:1"
        let since = Int(time(nil)) - 1
        let tagged = try box.docker(["tag", box.image, remote])
        #expect(tagged.status == .exited(0), "\(tagged.stderrText)")
        let ids = try box.docker(["images", "--format", "{{.ID}}", "--no-trunc"])
        #expect(Set(lines(ids)).count == 1, "one image, two names: \(ids.stdoutText)")

        let pushed = try box.docker(["push", remote])
        #expect(pushed.status == .exited(0), "\(pushed.stdoutText)\(pushed.stderrText)")
        #expect(
            pushed.stdoutText.contains("The push refers to repository [\(registry.host)/test/objects]"),
            "\(pushed.stdoutText)")
        #expect(pushed.stdoutText.contains("Pushed"), "\(pushed.stdoutText)")
        #expect(pushed.stdoutText.contains("1: digest: sha256:"), "\(pushed.stdoutText)")
        let again = try box.docker(["push", remote])
        #expect(again.stdoutText.contains("Layer already exists"), "\(again.stdoutText)")

        // What the registry now has under the name, asked of it through the daemon.
        let distribution = try rawExchange(
            box.socket, "GET /v1.47/distribution/\(remote)/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        #expect(distribution.status == 200, "\(distribution.body)")
        #expect(
            distribution.body.contains("\"digest\":\"sha256:") && distribution.body.contains("\"os\":\"linux\""),
            "\(distribution.body)")

        let untagged = try box.docker(["rmi", remote])
        #expect(untagged.status == .exited(0), "\(untagged.stderrText)")
        #expect(lines(untagged) == ["Untagged: \(remote)"], "\(untagged.stdoutText)")
        let pulled = try box.docker(["pull", remote])
        #expect(pulled.status == .exited(0), "\(pulled.stderrText)")
        #expect(lines(try box.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).contains(remote))

        let archive = box.base + "/saved.tar"
        let saved = try box.docker(["save", "-o", archive, remote])
        #expect(saved.status == .exited(0), "\(saved.stderrText)")
        let listing = try ChildProcess.run("/bin/tar", arguments: ["tar", "-tf", archive], environment: [])
        #expect(listing.stdoutText.contains("manifest.json"), "\(listing.stdoutText)")
        #expect(try box.docker(["rmi", remote]).status == .exited(0))
        let loaded = try box.docker(["load", "-i", archive])
        #expect(loaded.status == .exited(0), "\(loaded.stderrText)")
        #expect(loaded.stdoutText.contains("Loaded image: \(remote)"), "\(loaded.stdoutText)")
        let ran = try box.docker(["run", "--rm", "--network", "none", remote, "echo", "loaded"])
        #expect(ran.stdoutText == "loaded\n", "\(ran.stderrText)")

        // Each step was an image event, in order.
        let until = Int(time(nil)) + 1
        while Int(time(nil)) <= until { usleep(100_000) }
        let events = try box.docker([
            "events", "--since", String(since), "--until", String(until), "--filter", "type=image",
            "--format", "{{.Action}}",
        ])
        #expect(
            lines(events) == ["tag", "push", "push", "untag", "pull", "save", "untag", "load"], "\(events.stdoutText)")

    }

    @Test func removalIsRefusedWhileAContainerUsesTheImageAndHistoryAndPruneWork() throws {
        let history = try box.docker(["history", "--format", "{{.ID}} {{.CreatedBy}}", "--no-trunc", box.image])
        #expect(history.status == .exited(0), "\(history.stderrText)")
        let id = try box.docker(["image", "inspect", "--format", "{{.Id}}", box.image]).stdoutText.trimmed
        #expect(lines(history).first?.hasPrefix(id) == true, "\(history.stdoutText)")
        #expect(history.stdoutText.contains("berth image import"), "\(history.stdoutText)")

        #expect(
            try box.docker(["create", "--name", "user", "--network", "none", box.image, "true"]).status == .exited(0))
        let refused = try box.docker(["rmi", box.image])
        #expect(refused.status != .exited(0))
        #expect(refused.stderrText.contains("container"), "\(refused.stderrText)")
        let missing = try box.docker(["rmi", "nosuch:1"])
        #expect(missing.stderrText.contains("No such image: nosuch:1"), "\(missing.stderrText)")

        #expect(try box.docker(["tag", box.image, "test/spare:1"]).status == .exited(0))
        // Only dangling images by default: every Berth image has a name, so nothing goes.
        let dangling = try box.docker(["image", "prune", "-f"])
        #expect(dangling.status == .exited(0), "\(dangling.stderrText)")
        #expect(lines(try box.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).contains("test/spare:1"))
        // -a: the name no container was made from goes; the one `user` came from stays.
        let all = try box.docker(["image", "prune", "-af"])
        #expect(all.status == .exited(0), "\(all.stderrText)")
        #expect(all.stdoutText.contains("untagged: test/spare:1"), "\(all.stdoutText)")
        #expect(lines(try box.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])) == [box.image])

        // The last name gone, the image is deleted, its layer with it.
        #expect(try box.docker(["rm", "user"]).status == .exited(0))
        let deleted = try box.docker(["rmi", box.image])
        #expect(deleted.status == .exited(0), "\(deleted.stderrText)")
        let reported = lines(deleted)
        #expect(
            reported.first == "Untagged: \(box.image)" && reported.contains("Deleted: \(id)") && reported.count >= 3,
            "\(deleted.stdoutText)")
        #expect(try box.docker(["images", "-q"]).stdoutText.isEmpty)

        let search = try box.docker(["search", "busybox"])
        #expect(search.status != .exited(0))
        #expect(search.stderrText.contains("index.docker.io"), "\(search.stderrText)")
    }

    // MARK: System

    @Test func systemDfCountsImagesContainersAndVolumes() throws {
        #expect(try box.docker(["volume", "create", "dfvol"]).status == .exited(0))
        #expect(
            try box.docker(["create", "--name", "dfc", "--network", "none", "-v", "dfvol:/d", box.image, "true"]).status
                == .exited(0))
        let summary = try box.docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"])
        #expect(summary.status == .exited(0), "\(summary.stderrText)")
        #expect(
            lines(summary) == ["Images 1 1", "Containers 1 0", "Local Volumes 1 1", "Build Cache 0 0"],
            "\(summary.stdoutText)")
        let verbose = try box.docker(["system", "df", "-v"])
        #expect(verbose.status == .exited(0), "\(verbose.stderrText)")
        #expect(verbose.stdoutText.contains("test/dockerapi"), "\(verbose.stdoutText)")
        #expect(verbose.stdoutText.contains("dfvol"), "\(verbose.stdoutText)")
        #expect(verbose.stdoutText.contains("dfc"), "\(verbose.stdoutText)")
    }

    @Test(arguments: ["basic", "bearer"])
    func loginSucceedsWithTheRightCredentialsAndFailsWithA401Otherwise(scheme: String) throws {
        let server = try AuthRegistry(in: box.base, scheme: scheme)
        defer { server.stop() }
        let good = try box.docker(["login", server.host, "-u", "alice", "--password-stdin"], input: "s3cret\n")
        #expect(good.status == .exited(0), "\(good.stdoutText)\(good.stderrText)")
        #expect(good.stdoutText.contains("Login Succeeded"), "\(good.stdoutText)")
        let config = (try? FileSystem.readString(box.base + "/docker-config/config.json")) ?? ""
        #expect(config.contains(server.host), "\(config)")
        let bad = try box.docker(["login", server.host, "-u", "alice", "--password-stdin"], input: "wrong\n")
        #expect(bad.status != .exited(0))
        #expect(
            bad.stderrText.contains("401") || bad.stderrText.lowercased().contains("unauthorized"), "\(bad.stderrText)")

        // Pull and push send the stored credentials (X-Registry-Auth): the registry lets them past its
        // challenge and then has no such image — a 404, not an authentication failure.
        let image = "\(server.host)/test/private:1"
        let pulled = try box.docker(["pull", image])
        #expect(pulled.status != .exited(0))
        #expect(
            pulled.stderrText.contains("not found") && !pulled.stderrText.contains("authentication"),
            "\(pulled.stderrText)")
        #expect(try box.docker(["tag", box.image, image]).status == .exited(0))
        let pushed = try box.docker(["push", image])
        #expect(pushed.status != .exited(0))
        #expect(!pushed.stderrText.contains("authentication"), "\(pushed.stderrText)")
        // Without them: refused, and the push's error comes inside its stream.
        #expect(try box.docker(["logout", server.host]).status == .exited(0))
        let refusedPull = try box.docker(["pull", image])
        #expect(refusedPull.status != .exited(0))
        #expect(refusedPull.stderrText.contains("authentication"), "\(refusedPull.stderrText)")
        let refusedPush = try box.docker(["push", image])
        #expect(refusedPush.status != .exited(0))
        #expect(refusedPush.stdoutText.contains("The push refers to repository"), "\(refusedPush.stdoutText)")
        #expect(refusedPush.stderrText.contains("authentication"), "\(refusedPush.stderrText)")
    }

    private func requestThreads() -> Int {
        let tasks = (try? FileSystem.listDirectory("/proc/\(box.daemon)/task")) ?? []
        return tasks.filter {
            ((try? FileSystem.readString("/proc/\(box.daemon)/task/\($0)/comm")) ?? "").trimmed == "docker-api"
        }.count
    }
}

/// A registry's `/v2/` that wants credentials (alice / s3cret): Basic, or Bearer with a token from its
/// own `/token` realm — a few lines of Python's http.server, enough for `docker login`.
final class AuthRegistry: @unchecked Sendable {
    let port = LocalRegistry.freePort()
    private var pid: pid_t = 0
    var host: String { "127.0.0.1:\(port)" }

    init(in base: String, scheme: String) throws {
        guard let python3 else { throw TestFailure("no python3") }
        let script = base + "/auth-registry.py"
        try FileSystem.writeAtomically(script, Array(Self.script.utf8))
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        pid = try ChildProcess.spawn(
            python3, arguments: ["python3", script, String(port), scheme], environment: [standardPath],
            fileDescriptors: [0: devnull.rawValue, 1: devnull.rawValue, 2: devnull.rawValue])
        try LocalRegistry.awaitAccepting(port, within: 20, what: "the auth registry")
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        _ = try? ChildProcess.wait(pid)
        pid = 0
    }

    static let script = """
        import base64, http.server, sys
        port, scheme = int(sys.argv[1]), sys.argv[2]
        basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body=b"{}", challenge=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self, head=False):
                auth = self.headers.get("Authorization", "")
                if self.path.startswith("/token"):
                    return self.answer(200, b'{"token":"tok-alice"}') if auth == basic else self.answer(401)
                if not self.path.startswith("/v2/"):
                    return self.answer(404)
                if auth != (basic if scheme == "basic" else "Bearer tok-alice"):
                    challenge = 'Basic realm="test"' if scheme == "basic" else 'Bearer realm="http://127.0.0.1:%d/token",service="test"' % port
                    return self.answer(401, b"" if head else b"{}", challenge)
                if self.path == "/v2/":
                    return self.answer(200)
                # Past the challenge, this registry has nothing.
                self.answer(404, b"" if head else b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            def do_HEAD(self):
                self.do_GET(head=True)
            def do_POST(self):
                self.do_GET()
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """
}

/// The same objects through the docker SDK for Python (pip's `docker`): networks, volumes, events with
/// an end, and images saved, loaded and pushed.
@Suite(
    .serialized,
    .enabled(if: isRealRoot && pythonSDK, "runs containers and the Python SDK: needs real root and the SDK"))
final class DockerObjectSDKTests {
    let box: DaemonBox

    init() throws { box = try DaemonBox("objsdk") }
    deinit {
        if let ids = try? box.berthCLI(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? box.berthCLI(["rm", "-f"] + ids)
        }
        for name in ["sdkfront\(suffix)", "sdkback\(suffix)"] { _ = try? box.berthCLI(["network", "rm", name]) }
        box.tearDown()
    }

    let suffix = String(UInt32.random(in: 0...UInt32.max) % 100000)

    @Test func networksVolumesEventsAndImagesThroughThePythonSDK() throws {
        let registry = try LocalRegistry(in: box.base)
        defer { registry.stop() }
        let script = box.base + "/objects.py"
        try FileSystem.writeAtomically(script, Array(Self.script.utf8))
        let out = try ChildProcess.run(
            python3 ?? "python3", arguments: ["python3", script, box.socket, box.image, registry.host, suffix],
            environment: ChildProcess.currentEnvironment.filter { !$0.hasPrefix("DOCKER_") })
        #expect(out.status == .exited(0), "\(out.stdoutText)\(out.stderrText)")
        #expect(out.stdoutText.hasSuffix("all good\n"), "\(out.stdoutText)\(out.stderrText)")
    }

    static let script = """
        import io, sys, tarfile, time, docker
        socket, image, registry, suffix = sys.argv[1:5]
        c = docker.DockerClient(base_url="unix://" + socket)
        since = int(time.time()) - 1

        front = c.networks.create("sdkfront" + suffix, labels={"suite": "sdk"})
        back = c.networks.create("sdkback" + suffix)
        assert front.attrs["Driver"] == "bridge" and front.attrs["Labels"] == {"suite": "sdk"}, front.attrs
        assert front.attrs["IPAM"]["Config"][0]["Subnet"], front.attrs
        ctr = c.containers.run(image, ["sleep", "60"], detach=True, name="sdk-net", network=front.name)
        back.connect(ctr, aliases=["sdkalias"])
        back.reload()
        assert ctr.id in back.attrs["Containers"], back.attrs
        back.disconnect(ctr)
        back.reload()
        assert back.attrs["Containers"] == {}, back.attrs
        try:
            front.remove()
            raise SystemExit("a network in use was removed")
        except docker.errors.APIError as e:
            assert e.status_code == 403, e
        ctr.remove(force=True)
        front.remove()
        back.remove()
        assert c.networks.list(names=[front.name]) == []
        try:
            c.networks.get("nosuch")
            raise SystemExit("found nosuch")
        except docker.errors.NotFound:
            pass

        vol = c.volumes.create("sdkvol", labels={"suite": "sdk"})
        assert vol.attrs["Mountpoint"].endswith("/volumes/sdkvol/_data") and vol.attrs["Driver"] == "local", vol.attrs
        assert [v.name for v in c.volumes.list(filters={"label": "suite=sdk"})] == ["sdkvol"]
        vol.remove()
        assert c.volumes.list(filters={"label": "suite=sdk"}) == []
        try:
            c.volumes.get("sdkvol")
            raise SystemExit("found a removed volume")
        except docker.errors.NotFound:
            pass

        until = int(time.time()) + 1
        volume_events = [e["Action"] for e in c.events(since=since, until=until, decode=True, filters={"type": "volume"})]
        assert volume_events == ["create", "destroy"], volume_events
        network_events = [e["Action"] for e in c.events(since=since, until=until, decode=True, filters={"type": "network", "network": back.id})]
        assert network_events == ["create", "connect", "disconnect", "destroy"], network_events

        unnamed = b"".join(c.images.get(image).save())
        assert "manifest.json" in tarfile.open(fileobj=io.BytesIO(unnamed)).getnames()
        name = registry + "/sdk/img"
        c.images.get(image).tag(name, "2")
        archive = b"".join(c.images.get(name + ":2").save(named=True))
        c.images.remove(name + ":2")
        assert name + ":2" not in [t for i in c.images.list() for t in i.tags]
        loaded = c.images.load(archive)
        assert name + ":2" in loaded[0].tags, [i.tags for i in loaded]
        pushed = c.images.push(name, tag="2")
        assert "digest: sha256:" in pushed and "errorDetail" not in pushed, pushed
        c.images.remove(name + ":2")
        c.images.pull(name, tag="2")
        assert name + ":2" in [t for i in c.images.list() for t in i.tags]
        print("all good")
        """
}
