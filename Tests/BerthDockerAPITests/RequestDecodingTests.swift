@testable import BerthDockerAPI
import BerthEngine
import NIOHTTP1
import Testing

/// `POST /containers/create` bodies as the docker CLI and SDKs send them, and as they should never be
/// sent: every failure is a 400 that says what was wrong, never a crash.
@Suite struct RequestDecodingTests {
    /// What `docker run -d --name x -p 8080:80 --restart on-failure:3 -e A=1 -v /data --tmpfs /run:size=1m
    /// -l tier=web --network none IMG sh -c 'echo hi'` sends (CLI 28, trimmed of zero values it also sends).
    static let cliBody = """
        {"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,
         "ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],
         "Cmd":["sh","-c","echo hi"],"Image":"test/img:1","Volumes":{"/data":{}},"WorkingDir":"","Entrypoint":null,
         "OnBuild":null,"Labels":{"tier":"web"},
         "HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none",
           "PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},
           "AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],"CapAdd":null,"CapDrop":null,
           "CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"",
           "Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,
           "ReadonlyRootfs":false,"SecurityOpt":null,"Tmpfs":{"/run":"size=1m"},"UTSMode":"","UsernsMode":"","ShmSize":0,
           "Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"CpuPeriod":0,"CpuQuota":0,
           "CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
           "MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}],
           "Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1048576}}],"MaskedPaths":null,"ReadonlyPaths":null,"Init":true},
         "NetworkingConfig":{"EndpointsConfig":{"none":{}}}}
        """

    @Test func theCLIsBodyMapsToTheEnginesConfiguration() throws {
        var defaults = EngineConfiguration()
        defaults.logDriver = "json-file"
        defaults.logOptions = ["max-size": "10m"]
        let c = try ContainerCreateRequest.decode(Array(Self.cliBody.utf8)).configuration(defaults: defaults)
        #expect(c.image == "test/img:1")
        #expect(c.cmd == ["sh", "-c", "echo hi"])
        #expect(c.entrypoint == nil)
        #expect(c.env == ["A=1"])
        #expect(c.labels == ["tier": "web"])
        #expect(c.networkMode == "none")
        #expect(
            c.portBindings == [
                ContainerConfiguration.PortBinding(containerPort: 80, proto: "tcp", hostIP: "", hostPort: 8080)
            ])
        #expect(c.exposedPorts == ["80/tcp"])
        #expect(c.restartPolicy == .init(name: "on-failure", maximumRetryCount: 3))
        #expect(c.tmpfs == ["/run": "size=1m"])
        #expect(c.ulimits == [.init(name: "nofile", soft: 1024, hard: 2048)])
        #expect(c.initProcess)
        #expect(c.logDriver == "json-file" && c.logOptions == ["max-size": "10m"])
        #expect(c.mounts.map(\.type) == [.tmpfs, .volume])
        #expect(c.mounts.map(\.target) == ["/scratch", "/data"])
        #expect(c.mounts[0].tmpfsSize == 1_048_576)
        #expect(c.resources == ContainerConfiguration.Resources())
    }

    @Test func stringCommandsEmptyEntrypointsAndNetworkAliases() throws {
        let body = """
            {"Image":"img","Cmd":"echo one","Entrypoint":[""],"WorkingDir":"/w","StopSignal":"SIGUSR1","StopTimeout":3,
             "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":2000000000,"Retries":2},
             "HostConfig":{"NetworkMode":"front","Memory":67108864,"NanoCpus":1500000000,"PortBindings":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5300-5310"}]},
                           "AutoRemove":true,"LogConfig":{"Type":"none"}},
             "NetworkingConfig":{"EndpointsConfig":{"front":{"IPAMConfig":{"IPv4Address":"10.9.0.5"},"Aliases":["db"]},"back":{"Aliases":["b"]}}}}
            """
        let c = try ContainerCreateRequest.decode(Array(body.utf8)).configuration()
        #expect(c.cmd == ["echo one"])
        #expect(c.entrypoint == [""])
        #expect(c.workingDir == "/w")
        #expect(c.stopSignal == "SIGUSR1" && c.stopTimeout == 3)
        #expect(
            c.healthcheck?.test == ["CMD-SHELL", "true"] && c.healthcheck?.interval == 2_000_000_000
                && c.healthcheck?.retries == 2)
        #expect(c.networkMode == "front" && c.ipAddress == "10.9.0.5" && c.networkAliases == ["db"])
        #expect(c.additionalNetworks == ["back"])
        #expect(c.additionalEndpoints?["back"]?.aliases == ["b"])
        #expect(c.resources.memory == 67_108_864 && c.resources.nanoCPUs == 1_500_000_000)
        #expect(
            c.portBindings.first?.hostPort == 5300 && c.portBindings.first?.hostPortEnd == 5310
                && c.portBindings.first?.proto == "udp")
        #expect(c.autoRemove)
        #expect(c.logDriver == "none")
    }

    @Test(arguments: [
        ("", "config cannot be empty"),
        ("   \n", "config cannot be empty"),
        ("{", "invalid JSON"),
        ("not json", "invalid JSON"),
        ("[1,2]", "invalid JSON"),
        ("null", "invalid JSON"),
        ("{\"Image\": 5}", "Image"),
        ("{\"Image\":\"x\",\"Cmd\":{\"a\":1}}", "Cmd"),
        ("{\"Image\":\"x\",\"Env\":\"A=1\"}", "Env"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":\"lots\"}}", "HostConfig.Memory"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":8080}]}}}", "HostPort"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\"}]}}", "Soft"),
        ("{\"Image\":\"x\",\"Tty\":\"yes\"}", "Tty"),
        ("{\"Image\":\"x\"} trailing", "invalid JSON"),
    ])
    func malformedBodiesAreA400SayingWhere(body: String, mentions: String) {
        do {
            let request = try ContainerCreateRequest.decode(Array(body.utf8))
            _ = try request.configuration()
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == .badRequest)
            #expect(error.message.contains(mentions), "\(error.message)")
        }
    }

    @Test(arguments: [
        ("{}", "no image"),
        ("{\"Image\":\"x\",\"WorkingDir\":\"rel\"}", "absolute path"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"PidMode\":\"host\"}}", "HostConfig.PidMode is not supported"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Links\":[\"a:b\"]}}", "HostConfig.Links is not supported"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}", "invalid restart policy"),
        (
            "{\"Image\":\"x\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\",\"MaximumRetryCount\":2}}}",
            "only be used with 'on-failure'"
        ),
        ("{\"Image\":\"x\",\"HostConfig\":{\"PortBindings\":{\"http\":[]}}}", "invalid port specification"),
        (
            "{\"Image\":\"x\",\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"99999\"}]}}}",
            "invalid port specification"
        ),
        (
            "{\"Image\":\"x\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"rel\",\"Target\":\"/m\"}]}}",
            "must be absolute"
        ),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"npipe\",\"Target\":\"/m\"}]}}", "mount type npipe"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Memory\":1024}}", "Minimum memory limit"),
        ("{\"Image\":\"x\",\"HostConfig\":{\"Sysctls\":{\"kernel.hostname\":\"x\"}}}", "not allowed"),
        ("{\"Image\":\"x\",\"StopSignal\":\"SIGNOPE\"}", "SIGNOPE"),
        ("{\"Image\":\"x\",\"Healthcheck\":{\"Test\":[\"RUN\"]}}", "invalid healthcheck"),
    ])
    func invalidValuesAreA400NamingTheField(body: String, mentions: String) {
        do {
            _ = try ContainerCreateRequest.decode(Array(body.utf8)).configuration()
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == .badRequest)
            #expect(error.message.contains(mentions), "\(error.message)")
        }
    }

    /// Random corruptions of a real body: each decodes, or fails with a 400; none crashes.
    @Test func corruptedBodiesNeverCrashTheDecoder() {
        var generator = SplitMix64(seed: 0xBE27)
        let original = Array(Self.cliBody.utf8)
        var refused = 0
        for _ in 0..<2000 {
            let bytes = generator.corrupted(original)
            do {
                _ = try ContainerCreateRequest.decode(bytes).configuration()
            } catch {
                #expect(error.status == .badRequest)
                #expect(!error.message.isEmpty)
                refused += 1
            }
        }
        // Most corruptions break the JSON: the decoder did see bad input, and refused it.
        #expect(refused > 1000)
    }
}

/// The other bodies a client sends whole: exec create, network create and volume create, as the docker
/// CLI 28 sends them, corrupted the same seeded way. Each decodes (and passes the checks made before
/// the engine is asked), or is a 400 with a message; none crashes the decoder.
@Suite struct OtherBodyDecodingTests {
    /// `docker exec -it --detach-keys ctrl-x,x -e A=1 -u 0 -w /tmp ctr sh -c 'echo hi'`.
    static let execBody = """
        {"User":"0","Privileged":false,"Tty":true,"ConsoleSize":[40,120],"AttachStdin":true,"AttachStderr":true,
         "AttachStdout":true,"Detach":false,"DetachKeys":"ctrl-x,x","Env":["A=1"],"WorkingDir":"/tmp",
         "Cmd":["sh","-c","echo hi"]}
        """
    /// `docker network create --subnet 10.77.0.0/24 --gateway 10.77.0.1 --label a=b --internal front`.
    static let networkBody = """
        {"Name":"front","Driver":"bridge","Scope":"","EnableIPv6":null,"IPAM":{"Driver":"default",
         "Options":{},"Config":[{"Subnet":"10.77.0.0/24","Gateway":"10.77.0.1"}]},"Internal":true,
         "Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{"a":"b"}}
        """
    /// `docker volume create --label a=b data`.
    static let volumeBody = """
        {"Driver":"local","DriverOpts":{},"Labels":{"a":"b"},"Name":"data"}
        """

    /// Decodes `body` as the endpoint does, with the checks it makes before touching the engine.
    static func decode(_ kind: String, _ body: [UInt8]) throws(DockerAPIError) {
        switch kind {
        case "exec":
            let exec = try DockerAPI.decodeBody(DockerAPI.ExecCreateBody.self, body)
            _ = try DetachKeys(parsing: exec.DetachKeys)
        case "network":
            _ = try decodeJSON(DockerAPI.NetworkCreateRequest.self, body)
        default:
            _ = try decodeJSON(DockerAPI.VolumeCreateRequest.self, body)
        }
    }

    @Test func theCLIsBodiesDecode() throws {
        let exec = try DockerAPI.decodeBody(DockerAPI.ExecCreateBody.self, Array(Self.execBody.utf8))
        #expect(exec.Cmd == ["sh", "-c", "echo hi"] && exec.Tty == true && exec.ConsoleSize == [40, 120])
        #expect(try DetachKeys(parsing: exec.DetachKeys).sequence == [24, UInt8(ascii: "x")])
        let network = try decodeJSON(DockerAPI.NetworkCreateRequest.self, Array(Self.networkBody.utf8))
        #expect(network.Name == "front" && network.IPAM?.Config?.first?.Subnet == "10.77.0.0/24")
        let volume = try decodeJSON(DockerAPI.VolumeCreateRequest.self, Array(Self.volumeBody.utf8))
        #expect(volume.Name == "data" && volume.Labels == ["a": "b"])
    }

    @Test(
        arguments: [
            ("exec", OtherBodyDecodingTests.execBody, 0xE8EC), ("network", OtherBodyDecodingTests.networkBody, 0x4E77),
            ("volume", OtherBodyDecodingTests.volumeBody, 0x701),
        ] as [(String, String, UInt64)])
    func corruptedBodiesNeverCrashTheDecoder(kind: String, body: String, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let original = Array(body.utf8)
        var refused = 0
        var accepted = 0
        for _ in 0..<2000 {
            let bytes = generator.corrupted(original)
            do {
                try Self.decode(kind, bytes)
                accepted += 1
            } catch {
                #expect(error.status == .badRequest, "\(kind): \(error)")
                #expect(!error.message.isEmpty)
                refused += 1
            }
        }
        // Most corruptions break the JSON and are refused; some (a changed letter in a value) still decode.
        #expect(refused > 1000, "\(kind): \(refused) refused")
        #expect(accepted > 0, "\(kind): nothing decoded")
    }
}

/// A small deterministic generator, so the corruptions are the same on every run.
extension SplitMix64 {
    /// `original` with one to four random edits: a byte replaced, a byte removed, or the rest cut off.
    mutating func corrupted(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        for _ in 0..<Int(next() % 4 + 1) {
            let index = Int(next() % UInt64(bytes.count))
            switch next() % 3 {
            case 0: bytes[index] = UInt8(truncatingIfNeeded: next())
            case 1: bytes.remove(at: index)
            default: bytes = Array(bytes[..<index])
            }
            if bytes.isEmpty { break }
        }
        return bytes
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
