@testable import BerthDockerAPI
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The pure parts of the container endpoints: detach keys, `ps` output, Go file modes, time filters.
@Suite struct ContainerRouteHelperTests {
    @Test func detachKeysParseAsDockersAndRefuseUnknownKeys() throws {
        #expect(try DetachKeys(parsing: nil).sequence == [16, 17])
        #expect(try DetachKeys(parsing: "").sequence == [16, 17])
        #expect(try DetachKeys(parsing: "ctrl-a,x,ctrl-@,ctrl-\\").sequence == [1, UInt8(ascii: "x"), 0, 28])
        #expect(throws: DockerAPIError.self) { try DetachKeys(parsing: "ctrl-1") }
        #expect(throws: DockerAPIError.self) { try DetachKeys(parsing: "shift-a") }
    }

    @Test func detachKeysPassOtherInputOnAndHoldBackOnlyAPartialMatch() {
        var keys = DetachKeys.standard
        #expect(keys.filter(Array("ab".utf8)) == (Array("ab".utf8), false))
        // ctrl-p alone is held until the next byte says whether the sequence goes on.
        #expect(keys.filter([16]) == ([], false))
        #expect(keys.filter([UInt8(ascii: "z")]) == ([16, UInt8(ascii: "z")], false))
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p goes on, the rest detaches; what follows is dropped.
        #expect(keys.filter([16, 16, 17, UInt8(ascii: "y")]) == ([16], true))
        var split = DetachKeys.standard
        #expect(split.filter([UInt8(ascii: "a"), 16]) == ([UInt8(ascii: "a")], false))
        #expect(split.filter([17]) == ([], true))
    }

    @Test func psOutputKeepsTheContainersRowsWithTheCommandWhole() throws {
        let text = """
            UID          PID    PPID  C STIME TTY          TIME CMD
            root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
            root        4242    4200  0 10:01 ?        00:00:00 sleep 1000
            root        4243    4242  0 10:01 ?        00:00:00 sh -c echo a  b

            """
        let top = try DockerAPI.parsePS(text, pids: [4242, 4243])
        #expect(top.Titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
        #expect(top.Processes.count == 2)
        #expect(top.Processes[0] == ["root", "4242", "4200", "0", "10:01", "?", "00:00:00", "sleep 1000"])
        #expect(top.Processes[1].last == "sh -c echo a b")
        #expect(throws: DockerAPIError.self) { try DockerAPI.parsePS("USER COMMAND\nroot init\n", pids: [1]) }
    }

    @Test func fileModesBecomeGosFileModeBits() {
        #expect(DockerAPI.goFileMode(UInt32(S_IFREG) | 0o644) == 0o644)
        #expect(DockerAPI.goFileMode(UInt32(S_IFDIR) | 0o755) == 1 << 31 | 0o755)
        #expect(DockerAPI.goFileMode(UInt32(S_IFLNK) | 0o777) == 1 << 27 | 0o777)
        #expect(DockerAPI.goFileMode(UInt32(S_IFDIR) | UInt32(S_ISVTX) | 0o777) == 1 << 31 | 1 << 20 | 0o777)
        #expect(DockerAPI.goFileMode(UInt32(S_IFCHR) | 0o666) == 1 << 26 | 1 << 21 | 0o666)
    }

    @Test func pruneTimesAreSecondsRFC3339OrDurationsBeforeNow() throws {
        #expect(DockerAPI.pointInTime("1700000000") == 1_700_000_000)
        #expect(DockerAPI.pointInTime("2023-11-14T22:13:20Z") == 1_700_000_000)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let hourAndHalfAgo = try #require(DockerAPI.pointInTime("1h30m"))
        #expect(abs(Double(now.tv_sec) - 5400 - hourAndHalfAgo) < 5)
        #expect(DockerAPI.pointInTime("soon") == nil)
        #expect(DockerAPI.pointInTime("10x") == nil)
    }
}
