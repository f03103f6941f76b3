@testable import BerthEngine
import Testing

@Suite("docker run option parsers")
struct SpecParserTests {
    @Test("memory sizes: binary units, case-insensitive, optional b/ib")
    func memory() throws {
        #expect(try RunOptionParser.parseMemory("512m") == 512 << 20)
        #expect(try RunOptionParser.parseMemory("512M") == 512 << 20)
        #expect(try RunOptionParser.parseMemory("1g") == 1 << 30)
        #expect(try RunOptionParser.parseMemory("1GiB") == 1 << 30)
        #expect(try RunOptionParser.parseMemory("2kb") == 2048)
        #expect(try RunOptionParser.parseMemory("1.5k") == 1536)
        #expect(try RunOptionParser.parseMemory("1024") == 1024)
        #expect(try RunOptionParser.parseMemory("10b") == 10)
        #expect(try RunOptionParser.parseMemory("1t") == 1 << 40)
        #expect(try RunOptionParser.parseMemory("1p") == 1 << 50)
        #expect(try RunOptionParser.parseMemory("32 m") == 32 << 20)
        for bad in ["", "m", "12x", "1mb2", "1kibb", "-1m", "1bb", "abc", "1.2.3m"] {
            #expect(throws: EngineError.self, "\(bad)") { _ = try RunOptionParser.parseMemory(bad) }
        }
        #expect(invalidReason { _ = try RunOptionParser.parseMemory("12x") } == "invalid suffix: 'x'")
        #expect(invalidReason { _ = try RunOptionParser.parseMemory("m") } == "invalid size: 'm'")
        #expect(try RunOptionParser.parseMemorySwap("-1") == -1)
        #expect(try RunOptionParser.parseMemorySwap("1g") == 1 << 30)
        #expect(invalidReason { _ = try RunOptionParser.parseMemorySwap("-2") } != nil)
        do {
            _ = try RunOptionParser.parseMemory("zz", option: "--shm-size")
            Issue.record("accepted zz")
        } catch {
            #expect("\(error)".hasPrefix("invalid --shm-size:"))
        }
    }

    @Test("cpus: decimals, exponents, fractions; too precise or not a number fails")
    func cpus() throws {
        #expect(try RunOptionParser.parseCPUs("1.5") == 1_500_000_000)
        #expect(try RunOptionParser.parseCPUs("2") == 2_000_000_000)
        #expect(try RunOptionParser.parseCPUs("0.000000001") == 1)
        #expect(try RunOptionParser.parseCPUs(".5") == 500_000_000)
        #expect(try RunOptionParser.parseCPUs("3/2") == 1_500_000_000)
        #expect(try RunOptionParser.parseCPUs("1e-3") == 1_000_000)
        #expect(try RunOptionParser.parseCPUs("1.50000000000") == 1_500_000_000)
        #expect(invalidReason { _ = try RunOptionParser.parseCPUs("0.0000000001") } == "value is too precise")
        #expect(
            invalidReason { _ = try RunOptionParser.parseCPUs("abc") } == "failed to parse abc as a rational number")
        for bad in ["", ".", "1.2.3", "1/0", "1e", "--1"] {
            #expect(throws: EngineError.self, "\(bad)") { _ = try RunOptionParser.parseCPUs(bad) }
        }
    }

    @Test("durations as Go's ParseDuration")
    func durations() throws {
        #expect(try RunOptionParser.parseDuration("30s") == 30_000_000_000)
        #expect(try RunOptionParser.parseDuration("1m30s") == 90_000_000_000)
        #expect(try RunOptionParser.parseDuration("500ms") == 500_000_000)
        #expect(try RunOptionParser.parseDuration("1.5h") == 5_400_000_000_000)
        #expect(try RunOptionParser.parseDuration("1.001s") == 1_001_000_000)
        #expect(try RunOptionParser.parseDuration("2us") == 2_000)
        #expect(try RunOptionParser.parseDuration("2µs") == 2_000)
        #expect(try RunOptionParser.parseDuration("7ns") == 7)
        #expect(try RunOptionParser.parseDuration("0") == 0)
        #expect(try RunOptionParser.parseDuration("-2m") == -120_000_000_000)
        #expect(try RunOptionParser.parseDuration(".5s") == 500_000_000)
        #expect(
            invalidReason { _ = try RunOptionParser.parseDuration("30") } == "time: missing unit in duration \"30\"")
        #expect(
            invalidReason { _ = try RunOptionParser.parseDuration("3d") }
                == "time: unknown unit \"d\" in duration \"3d\"")
        for bad in ["", "s", "1..5s", "-", ".s", "9999999999999h"] {
            #expect(throws: EngineError.self, "\(bad)") { _ = try RunOptionParser.parseDuration(bad) }
        }
    }

    @Test("signals by name, SIG-less name, number and real-time offset")
    func signals() throws {
        #expect(try RunOptionParser.parseSignal("SIGTERM") == 15)
        #expect(try RunOptionParser.parseSignal("term") == 15)
        #expect(try RunOptionParser.parseSignal("KILL") == 9)
        #expect(try RunOptionParser.parseSignal("15") == 15)
        #expect(try RunOptionParser.parseSignal("RTMIN+3") == 37)
        #expect(try RunOptionParser.parseSignal("SIGRTMAX-1") == 63)
        #expect(try RunOptionParser.parseSignal("SIGWINCH") == 28)
        for bad in ["0", "-1", "65", "32", "SIGFOO", "", "RTMIN+16"] {
            #expect(throws: EngineError.self, "\(bad)") { _ = try RunOptionParser.parseSignal(bad) }
        }
        #expect(invalidReason { _ = try RunOptionParser.parseSignal("SIGFOO") } == "invalid signal: SIGFOO")
    }

    @Test("ulimits: soft[:hard], unlimited, bounds")
    func ulimits() throws {
        #expect(try RunOptionParser.parseUlimit("nofile=1024:2048") == .init(name: "nofile", soft: 1024, hard: 2048))
        #expect(try RunOptionParser.parseUlimit("nproc=100") == .init(name: "nproc", soft: 100, hard: 100))
        #expect(try RunOptionParser.parseUlimit("core=-1") == .init(name: "core", soft: -1, hard: -1))
        #expect(try RunOptionParser.parseUlimit("core=10:-1") == .init(name: "core", soft: 10, hard: -1))
        #expect(invalidReason { _ = try RunOptionParser.parseUlimit("nofile") } == "invalid ulimit argument: nofile")
        #expect(invalidReason { _ = try RunOptionParser.parseUlimit("files=1") } == "invalid ulimit type: files")
        #expect(invalidReason { _ = try RunOptionParser.parseUlimit("nofile=2:1") }?.contains("2 > 1") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseUlimit("nofile=-1:5") }?.contains("soft: -1 (unlimited)")
                == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseUlimit("nofile=1:2:3") }?.contains(
                "too many limit value arguments") == true)
        #expect(throws: EngineError.self) { _ = try RunOptionParser.parseUlimit("nofile=x") }
    }

    @Test("devices: host path, container path, permissions")
    func devices() throws {
        #expect(
            try RunOptionParser.parseDevice("/dev/fuse") == .init(pathOnHost: "/dev/fuse", pathInContainer: "/dev/fuse")
        )
        #expect(
            try RunOptionParser.parseDevice("/dev/sda:/dev/xvda")
                == .init(pathOnHost: "/dev/sda", pathInContainer: "/dev/xvda"))
        #expect(
            try RunOptionParser.parseDevice("/dev/sda:r")
                == .init(pathOnHost: "/dev/sda", pathInContainer: "/dev/sda", cgroupPermissions: "r"))
        #expect(
            try RunOptionParser.parseDevice("/dev/sda:/dev/xvda:rw")
                == .init(pathOnHost: "/dev/sda", pathInContainer: "/dev/xvda", cgroupPermissions: "rw"))
        #expect(
            invalidReason { _ = try RunOptionParser.parseDevice("/dev/sda:/dev/xvda:rwx") } == "bad mode specified: rwx"
        )
        #expect(
            invalidReason { _ = try RunOptionParser.parseDevice("/dev/sda:/dev/xvda:rr") } == "bad mode specified: rr")
        #expect(
            invalidReason { _ = try RunOptionParser.parseDevice("/dev/sda:xvda") } == "xvda is not an absolute path")
        #expect(
            invalidReason { _ = try RunOptionParser.parseDevice("a:b:c:d") }?.hasPrefix("bad format for path") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseDevice(":/dev/x") }?.hasPrefix("bad format for path") == true)
    }

    @Test("tmpfs: destination and options, checked")
    func tmpfs() throws {
        #expect(try RunOptionParser.parseTmpfs("/run:size=64m,mode=1777") == ("/run", "size=64m,mode=1777"))
        #expect(try RunOptionParser.parseTmpfs("/run") == ("/run", ""))
        #expect(try RunOptionParser.parseTmpfs("/run/") == ("/run", ""))
        #expect(invalidReason { _ = try RunOptionParser.parseTmpfs("run") }?.contains("must be absolute") == true)
        #expect(invalidReason { _ = try RunOptionParser.parseTmpfs("/") }?.contains("destination can't be '/'") == true)
        #expect(invalidReason { _ = try RunOptionParser.parseTmpfs("/run:size") } == "invalid tmpfs option \"size\"")
        #expect(
            invalidReason { _ = try RunOptionParser.parseTmpfs("/run:color=blue") }
                == "invalid tmpfs option \"color=blue\"")
    }

    @Test("-v: anonymous, named and bind forms with modes")
    func volumes() throws {
        let anonymous = try RunOptionParser.parseVolume("/data")
        #expect(anonymous.type == .volume && anonymous.source == "" && anonymous.target == "/data")
        let named = try RunOptionParser.parseVolume("cache:/var/cache:ro,nocopy")
        #expect(named.type == .volume && named.source == "cache" && named.target == "/var/cache")
        #expect(named.readOnly && named.noCopy)
        let bind = try RunOptionParser.parseVolume("/srv/app/:/app:ro,rshared,z")
        #expect(bind.type == .bind && bind.source == "/srv/app" && bind.target == "/app")
        #expect(bind.readOnly && bind.propagation == "rshared" && bind.options == ["z"])
        let plain = try RunOptionParser.parseVolume("/a:/b")
        #expect(!plain.readOnly && plain.propagation == nil)
        let relative = try RunOptionParser.parseVolume("./data:/d", currentDirectory: "/home/me")
        #expect(relative.type == .bind && relative.source == "/home/me/data")
        #expect(
            invalidReason { _ = try RunOptionParser.parseVolume("/a:ro") } == "invalid volume specification: '/a:ro'")
        #expect(invalidReason { _ = try RunOptionParser.parseVolume("/a:/b:ro,rw") } == "invalid mode: ro,rw")
        #expect(invalidReason { _ = try RunOptionParser.parseVolume("/a:/b:bogus") } == "invalid mode: bogus")
        #expect(
            invalidReason { _ = try RunOptionParser.parseVolume("/a:/b:ro:x") }
                == "invalid volume specification: '/a:/b:ro:x'")
        #expect(invalidReason { _ = try RunOptionParser.parseVolume(":/b") } == "invalid volume specification: ':/b'")
        #expect(invalidReason { _ = try RunOptionParser.parseVolume("/a:b") }?.contains("must be absolute") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseVolume("/a:/") }?.contains("destination can't be '/'") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseVolume("bad name:/b") }?.contains(
                "invalid characters for a local volume name") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseVolume("vol:/b:rshared") }?.contains("bind mounts only")
                == true)
    }

    @Test("--mount: CSV fields for bind, volume and tmpfs")
    func mounts() throws {
        let bind = try RunOptionParser.parseMount("type=bind,source=/srv,target=/app,readonly,bind-propagation=rslave")
        #expect(
            bind.type == .bind && bind.source == "/srv" && bind.target == "/app" && bind.readOnly
                && bind.propagation == "rslave")
        let nonRecursive = try RunOptionParser.parseMount("type=bind,src=/srv,dst=/app,bind-recursive=disabled")
        #expect(nonRecursive.options == ["bind"])
        let volume = try RunOptionParser.parseMount("source=data,target=/data,volume-nocopy")
        #expect(volume.type == .volume && volume.source == "data" && volume.noCopy)
        let tmpfs = try RunOptionParser.parseMount("type=tmpfs,destination=/scratch,tmpfs-size=64m,tmpfs-mode=1770")
        #expect(tmpfs.type == .tmpfs && tmpfs.tmpfsSize == 64 << 20 && tmpfs.tmpfsMode == 0o1770)
        let quoted = try RunOptionParser.parseMount("type=bind,\"source=/a,b\",target=/c,ro=false")
        #expect(quoted.source == "/a,b" && !quoted.readOnly)
        #expect(invalidReason { _ = try RunOptionParser.parseMount("type=bind,source=/a") } == "target is required")
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=bind,target=/a") }?.contains(
                "field Source must not be empty") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=bind,source=a,target=/a") }?.contains(
                "must be absolute") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=tmpfs,source=x,target=/a") }?.contains(
                "Source must not be specified") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=volume,target=/a,readonly") }?.contains(
                "anonymous volumes") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=volume,target=/a,bind-propagation=shared") }
                == "cannot mix 'bind-*' options with mount type 'volume'")
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=image,source=x,target=/a") }?.contains(
                "not supported") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=bind,source=/a,target=/b,color=red") }
                == "unexpected key 'color' in 'color=red'")
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=bind,source=/a,target=/b,bogus") }
                == "invalid field 'bogus' must be a key=value pair")
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=bind,source=/a,target=/b,readonly=maybe") }
                == "invalid value for readonly: maybe")
        #expect(
            invalidReason { _ = try RunOptionParser.parseMount("type=tmpfs,target=/b,tmpfs-mode=9") }
                == "invalid value for tmpfs-mode: 9")
        #expect(invalidReason { _ = try RunOptionParser.parseMount("type=bind,\"source=/a,target=/b") } != nil)
    }

    @Test("restart policies")
    func restart() throws {
        #expect(try RunOptionParser.parseRestartPolicy("") == .init())
        #expect(try RunOptionParser.parseRestartPolicy("always") == .init(name: "always"))
        #expect(try RunOptionParser.parseRestartPolicy("unless-stopped") == .init(name: "unless-stopped"))
        #expect(try RunOptionParser.parseRestartPolicy("on-failure") == .init(name: "on-failure"))
        #expect(
            try RunOptionParser.parseRestartPolicy("on-failure:3") == .init(name: "on-failure", maximumRetryCount: 3))
        #expect(
            invalidReason { _ = try RunOptionParser.parseRestartPolicy("on-failure:x") }?.contains("must be an integer")
                == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseRestartPolicy("on-failure:-1") }?.contains(
                "cannot be negative") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseRestartPolicy("always:3") }?.contains(
                "only be used with 'on-failure'") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseRestartPolicy(":3") }?.contains("no policy provided") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseRestartPolicy("sometimes") }?.contains(
                "unknown policy 'sometimes'") == true)
    }

    @Test("-e and --env-file: caller's values for bare keys, comments and blank lines skipped")
    func environment() throws {
        let caller = ["HOME": "/root", "EMPTY": ""]
        let lookup: (String) -> String? = { caller[$0] }
        #expect(try RunOptionParser.parseEnv("A=1", lookup: lookup) == "A=1")
        #expect(try RunOptionParser.parseEnv("A=", lookup: lookup) == "A=")
        #expect(try RunOptionParser.parseEnv("HOME", lookup: lookup) == "HOME=/root")
        #expect(try RunOptionParser.parseEnv("EMPTY", lookup: lookup) == "EMPTY=")
        #expect(try RunOptionParser.parseEnv("UNSET", lookup: lookup) == "UNSET")
        #expect(
            invalidReason { _ = try RunOptionParser.parseEnv("=x", lookup: lookup) }
                == "invalid environment variable: =x")

        let file =
            "\u{FEFF}# settings\nA=1\n\n   B=spaced value \nHOME\nUNSET\nC=\"quoted\"\r\n\t# indented comment\nD=x=y\n"
        #expect(
            try RunOptionParser.parseEnvFile(file, lookup: lookup) == [
                "A=1", "B=spaced value ", "HOME=/root", "C=\"quoted\"", "D=x=y",
            ])
        #expect(
            invalidReason { _ = try RunOptionParser.parseEnvFile("B =1\n", lookup: lookup) }
                == "variable 'B ' contains whitespaces")
        #expect(try RunOptionParser.parseLabelFile("# labels\ntier=web\nbare\n") == ["tier=web"])
        #expect(
            invalidReason { _ = try RunOptionParser.parseEnvFile("B C=1\n", lookup: lookup) }
                == "variable 'B C' contains whitespaces")
        #expect(
            invalidReason { _ = try RunOptionParser.parseEnvFile("=1\n", lookup: lookup) }
                == "no variable name on line '=1'")
        #expect(
            try RunOptionParser.parseEnvFile("A=1\nHOME\nUNSET\nC=\"q\"\r\nD=x=y", lookup: lookup) == [
                "A=1", "HOME=/root", "C=\"q\"", "D=x=y",
            ])
        #expect(try RunOptionParser.parseEnvFile("\u{FEFF}X=1\n  # c\n\n", lookup: lookup) == ["X=1"])
    }

    @Test("labels and sysctls")
    func labelsAndSysctls() throws {
        #expect(try RunOptionParser.parseLabel("a=b=c") == ("a", "b=c"))
        #expect(try RunOptionParser.parseLabel("flag") == ("flag", ""))
        #expect(invalidReason { _ = try RunOptionParser.parseLabel("=x") } == "invalid label '=x': empty name")
        #expect(invalidReason { _ = try RunOptionParser.parseLabel("a b=x") } == "label 'a b' contains whitespaces")
        #expect(try RunOptionParser.parseSysctl("net.ipv4.ip_forward=1") == ("net.ipv4.ip_forward", "1"))
        #expect(try RunOptionParser.parseSysctl("kernel.shm_rmid_forced=1") == ("kernel.shm_rmid_forced", "1"))
        #expect(try RunOptionParser.parseSysctl("fs.mqueue.queues_max=10") == ("fs.mqueue.queues_max", "10"))
        #expect(
            invalidReason { _ = try RunOptionParser.parseSysctl("kernel.hostname=x") }
                == "sysctl 'kernel.hostname' is not allowed")
        #expect(
            invalidReason { _ = try RunOptionParser.parseSysctl("vm.swappiness=1") }
                == "sysctl 'vm.swappiness' is not allowed")
        #expect(throws: EngineError.self) { _ = try RunOptionParser.parseSysctl("net.ipv4.ip_forward") }
    }

    @Test("security options parse into their kinds")
    func securityOptions() throws {
        #expect(try RunOptionParser.parseSecurityOpt("no-new-privileges") == .noNewPrivileges(true))
        #expect(try RunOptionParser.parseSecurityOpt("no-new-privileges=false") == .noNewPrivileges(false))
        #expect(try RunOptionParser.parseSecurityOpt("no-new-privileges:true") == .noNewPrivileges(true))
        #expect(try RunOptionParser.parseSecurityOpt("seccomp=unconfined") == .seccomp("unconfined"))
        #expect(try RunOptionParser.parseSecurityOpt("seccomp:/p.json") == .seccomp("/p.json"))
        #expect(try RunOptionParser.parseSecurityOpt("apparmor=unconfined") == .apparmor("unconfined"))
        #expect(try RunOptionParser.parseSecurityOpt("label=disable") == .label("disable"))
        #expect(try RunOptionParser.parseSecurityOpt("systempaths=unconfined") == .systemPathsUnconfined)
        #expect(
            invalidReason { _ = try RunOptionParser.parseSecurityOpt("seccomp") }?.contains("expected KEY=VALUE")
                == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseSecurityOpt("seccomp=") }?.contains("needs a value") == true)
        #expect(
            invalidReason { _ = try RunOptionParser.parseSecurityOpt("no-new-privileges=yes") }?.contains(
                "true or false") == true)
    }
}

@Suite("docker run port parsers")
struct SpecPortParserTests {
    typealias Binding = ContainerConfiguration.PortBinding

    // -p is parsed by BerthNetwork.PortMapping (PortMappingTests): one parser, with host ranges.

    @Test("--add-host: name and IPv4, IPv6 or host-gateway, with : or =")
    func addHost() throws {
        #expect(try RunOptionParser.parseAddHost("db:10.0.0.5") == "db:10.0.0.5")
        #expect(try RunOptionParser.parseAddHost("db=10.0.0.5") == "db:10.0.0.5")
        #expect(try RunOptionParser.parseAddHost("v6:::1") == "v6:::1")
        #expect(try RunOptionParser.parseAddHost("v6=[2001:db8::1]") == "v6:2001:db8::1")
        #expect(try RunOptionParser.parseAddHost("gw:host-gateway") == "gw:host-gateway")
        #expect(invalidReason { _ = try RunOptionParser.parseAddHost("db") } == "bad format for add-host: \"db\"")
        #expect(
            invalidReason { _ = try RunOptionParser.parseAddHost(":1.2.3.4") }
                == "bad format for add-host: \":1.2.3.4\"")
        #expect(
            invalidReason { _ = try RunOptionParser.parseAddHost("db:nothost") }
                == "invalid IP address in add-host: \"nothost\"")
    }

    @Test("--expose: ports and ranges with a protocol")
    func expose() throws {
        #expect(try RunOptionParser.parseExpose("80") == ["80/tcp"])
        #expect(try RunOptionParser.parseExpose("53/udp") == ["53/udp"])
        #expect(try RunOptionParser.parseExpose("8000-8002/tcp") == ["8000/tcp", "8001/tcp", "8002/tcp"])
        #expect(throws: EngineError.self) { _ = try RunOptionParser.parseExpose("80/icmp") }
        #expect(throws: EngineError.self) { _ = try RunOptionParser.parseExpose("http") }
    }
}

@Suite("docker run health check options and engine entry points")
struct SpecHealthcheckTests {
    @Test("--health-* make a CMD-SHELL check; --no-healthcheck alone disables; negatives refused")
    func healthcheck() throws {
        #expect(try RunOptionParser.parseHealthcheck() == nil)
        let check = try #require(
            try RunOptionParser.parseHealthcheck(
                command: "curl -f localhost", interval: "30s", timeout: "5s",
                startPeriod: "1m", retries: 3))
        #expect(check.test == ["CMD-SHELL", "curl -f localhost"])
        #expect(
            check.interval == 30_000_000_000 && check.timeout == 5_000_000_000 && check.startPeriod == 60_000_000_000)
        #expect(check.retries == 3 && check.startInterval == 0)
        #expect(try RunOptionParser.parseHealthcheck(interval: "10s")?.test == [])
        #expect(try RunOptionParser.parseHealthcheck(disabled: true)?.test == ["NONE"])
        #expect(
            invalidReason { _ = try RunOptionParser.parseHealthcheck(command: "true", disabled: true) }
                == "--no-healthcheck conflicts with --health-* options")
        #expect(
            invalidReason { _ = try RunOptionParser.parseHealthcheck(interval: "-1s") }
                == "--health-interval cannot be negative")
        #expect(
            invalidReason { _ = try RunOptionParser.parseHealthcheck(retries: -1) }
                == "--health-retries cannot be negative")
        #expect(
            invalidReason { _ = try RunOptionParser.parseHealthcheck(timeout: "5") }
                == "time: missing unit in duration \"5\"")
    }

    @Test("the engine's entry points: command, user for exec, privileged capabilities of this machine")
    func entryPoints() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.entrypoint = ["/e"]
        #expect(try SpecBuilder.command(request, image: imageConfig(cmd: ["dropped"])) == ["/e"])
        #expect(try SpecBuilder.resolveUser("app", rootfs: rootfs.path).uid == 1000)
        let privileged = ContainerCapabilities.privileged()
        #expect(privileged.contains("CAP_SYS_ADMIN") || !privileged.isEmpty)
        #expect(privileged == HostFacts.current().availableCapabilities)
    }
}
