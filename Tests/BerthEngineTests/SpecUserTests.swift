#if canImport(Glibc)
import Glibc
#endif
@testable import BerthEngine
import BerthOCI
import BerthOS
import Testing

@Suite("Spec builder: user resolution")
struct SpecUserTests {
    @Test("names and numbers, with and without a group, resolve as docker's GetExecUser")
    func forms() throws {
        let rootfs = makeSpecRootfs()
        func user(_ spec: String) throws(EngineError) -> Spec.User {
            try ContainerUser.resolve(spec, rootfs: rootfs.path)
        }
        #expect(try user("") == Spec.User(uid: 0, gid: 0, additionalGids: [0]))
        #expect(try user("app") == Spec.User(uid: 1000, gid: 1000, additionalGids: [1000, 1001]))
        #expect(try user("1000") == Spec.User(uid: 1000, gid: 1000, additionalGids: [1000, 1001]))
        #expect(try user("app:extra") == Spec.User(uid: 1000, gid: 1001, additionalGids: [1001]))
        #expect(try user("app:0") == Spec.User(uid: 1000, gid: 0, additionalGids: [0]))
        #expect(try user("nobody:nogroup") == Spec.User(uid: 65534, gid: 65534, additionalGids: [65534]))
        // A number not in passwd is taken as is, with group 0 (or the given one).
        #expect(try user("4242") == Spec.User(uid: 4242, gid: 0, additionalGids: [0]))
        #expect(try user("4242:4343") == Spec.User(uid: 4242, gid: 4343, additionalGids: [4343]))
    }

    @Test("--group-add: names and numbers from /etc/group, unknown numbers as is, unknown names an error")
    func groupAdd() throws {
        let rootfs = makeSpecRootfs()
        #expect(
            try ContainerUser.resolve("app", groupAdd: ["nogroup", "0", "777", "nogroup"], rootfs: rootfs.path)
                == Spec.User(uid: 1000, gid: 1000, additionalGids: [1000, 1001, 65534, 0, 777]))
        #expect(
            invalidReason { _ = try ContainerUser.resolve("", groupAdd: ["ghosts"], rootfs: rootfs.path) }
                == "Unable to find group ghosts: no matching entries in group file")
        #expect(
            invalidReason { _ = try ContainerUser.resolve("", groupAdd: ["-1"], rootfs: rootfs.path) }
                == "uids and gids must be in range 0-2147483647")
    }

    @Test("unknown names are docker's errors")
    func unknown() {
        let rootfs = makeSpecRootfs()
        #expect(
            invalidReason { _ = try ContainerUser.resolve("ghost", rootfs: rootfs.path) }
                == "unable to find user ghost: no matching entries in passwd file")
        #expect(
            invalidReason { _ = try ContainerUser.resolve("app:ghosts", rootfs: rootfs.path) }
                == "unable to find group ghosts: no matching entries in group file")
        #expect(
            invalidReason { _ = try ContainerUser.resolve("-5", rootfs: rootfs.path) }
                == "uids and gids must be in range 0-2147483647")
    }

    @Test("without /etc/passwd and /etc/group numbers work and names fail")
    func missingFiles() throws {
        let empty = SpecScratchDirectory("rootfs")
        #expect(try ContainerUser.resolve("", rootfs: empty.path) == Spec.User(uid: 0, gid: 0, additionalGids: [0]))
        #expect(
            try ContainerUser.resolve("12:34", rootfs: empty.path) == Spec.User(uid: 12, gid: 34, additionalGids: [34]))
        #expect(
            invalidReason { _ = try ContainerUser.resolve("root", rootfs: empty.path) }
                == "unable to find user root: no matching entries in passwd file")
    }

    @Test("an absolute symlink /etc/passwd resolves inside the root file system, not on the host")
    func absoluteSymlinkStaysInside() throws {
        let rootfs = SpecScratchDirectory("rootfs")
        rootfs.write("elsewhere/passwd", "inside:x:4242:4343::/:/bin/sh\n")
        try FileSystem.makeDirectories(rootfs.path + "/etc")
        // On the host /elsewhere/passwd does not exist; in the root it does.
        #expect(symlink("/elsewhere/passwd", rootfs.path + "/etc/passwd") == 0)
        #expect(!FileSystem.exists("/elsewhere/passwd"))
        #expect(try ContainerUser.resolve("inside", rootfs: rootfs.path).uid == 4242)
    }

    @Test("a symlink to the host's /etc/passwd (by absolute path or by ..) never reads the host's file")
    func hostileSymlinks() throws {
        // The host has a `daemon` user (Debian's base passwd); the image has none.
        let hostPasswd = try FileSystem.readString("/etc/passwd")
        try #require(hostPasswd.contains("\ndaemon:"))
        for target in ["/etc/passwd", "../../../../../../../../../../etc/passwd"] {
            let rootfs = SpecScratchDirectory("rootfs")
            try FileSystem.makeDirectories(rootfs.path + "/etc")
            #expect(symlink(target, rootfs.path + "/etc/passwd") == 0)
            // Inside the root both point back at etc/passwd itself: a loop, so an error, never the host's daemon.
            #expect(throws: EngineError.self) { _ = try ContainerUser.resolve("daemon", rootfs: rootfs.path) }
        }
        let rootfs = SpecScratchDirectory("rootfs")
        rootfs.write("data/passwd", "daemon:x:777:777::/:/bin/sh\n")
        try FileSystem.makeDirectories(rootfs.path + "/etc")
        #expect(symlink("../../../../../../../../data/passwd", rootfs.path + "/etc/passwd") == 0)
        #expect(try ContainerUser.resolve("daemon", rootfs: rootfs.path).uid == 777)
    }

    @Test("a FIFO at /etc/passwd is refused instead of blocking")
    func fifoRefused() throws {
        let rootfs = SpecScratchDirectory("rootfs")
        try FileSystem.makeDirectories(rootfs.path + "/etc")
        #expect(mkfifo(rootfs.path + "/etc/passwd", 0o644) == 0)
        #expect(
            invalidReason { _ = try ContainerUser.resolve("x", rootfs: rootfs.path) }?.contains("not a regular file")
                == true)
    }

    @Test("the spec's user comes from the request, else the image")
    func requestOverImage() throws {
        let rootfs = makeSpecRootfs()
        var request = ContainerConfiguration(image: "i")
        request.cmd = ["x"]
        #expect(
            try SpecBuilder.build(
                specInputs(request, image: imageConfig(user: "app"), rootfs: rootfs.path), host: specTestHost
            )
            .process?.user.uid == 1000)
        request.user = ""
        #expect(
            try SpecBuilder.build(
                specInputs(request, image: imageConfig(user: "app"), rootfs: rootfs.path), host: specTestHost
            )
            .process?.user.uid == 1000)
        request.user = "nobody"
        #expect(
            try SpecBuilder.build(
                specInputs(request, image: imageConfig(user: "app"), rootfs: rootfs.path), host: specTestHost
            )
            .process?.user.uid == 65534)
    }
}
