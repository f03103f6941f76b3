import BerthRuntime
import Testing

/// runc's spellings of the per-container verbs, recognised without ArgumentParser; anything unusual is
/// left to ArgumentParser (nil).
@Suite struct HotVerbsTests {
    @Test func createWithEveryFlagSpelling() {
        var expected = CreateOptions(id: "c1", bundle: "/b")
        expected.pidFile = "/run/p"
        expected.consoleSocket = "/run/s"
        expected.noPivot = true
        expected.noNewKeyring = true
        expected.preserveFds = 2
        #expect(
            HotVerbs.parse([
                "create", "--bundle", "/b", "--pid-file", "/run/p", "--console-socket=/run/s",
                "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "c1",
            ]) == .create(expected))
        #expect(
            HotVerbs.parse([
                "create", "-b", "/b", "c1", "--pid-file=/run/p", "--console-socket", "/run/s",
                "--no-pivot", "--no-new-keyring", "--preserve-fds=2",
            ]) == .create(expected))
        #expect(HotVerbs.parse(["create", "c1"]) == .create(CreateOptions(id: "c1", bundle: ".")))
    }

    @Test func runDetachAndTheOtherVerbs() {
        #expect(
            HotVerbs.parse(["run", "-d", "--bundle=/b", "x"])
                == .run(CreateOptions(id: "x", bundle: "/b"), detach: true))
        #expect(
            HotVerbs.parse(["run", "--bundle", "/b", "x"]) == .run(CreateOptions(id: "x", bundle: "/b"), detach: false))
        #expect(HotVerbs.parse(["start", "x"]) == .start("x"))
        #expect(HotVerbs.parse(["state", "x"]) == .state("x"))
        #expect(HotVerbs.parse(["kill", "x"]) == .kill("x", signal: "SIGTERM", all: false))
        #expect(HotVerbs.parse(["kill", "--all", "x", "KILL"]) == .kill("x", signal: "KILL", all: true))
        #expect(HotVerbs.parse(["kill", "-a", "x", "9"]) == .kill("x", signal: "9", all: true))
        #expect(HotVerbs.parse(["delete", "-f", "x"]) == .delete("x", force: true))
        #expect(HotVerbs.parse(["delete", "x"]) == .delete("x", force: false))
    }

    @Test func unusualInvocationsGoToArgumentParser() {
        #expect(HotVerbs.parse([]) == nil)
        #expect(HotVerbs.parse(["list"]) == nil)
        #expect(HotVerbs.parse(["create", "--help"]) == nil)
        #expect(HotVerbs.parse(["create", "-h"]) == nil)
        #expect(HotVerbs.parse(["create"]) == nil, "missing id")
        #expect(HotVerbs.parse(["create", "a", "b"]) == nil, "two ids")
        #expect(HotVerbs.parse(["create", "--bundle"]) == nil, "flag without its value")
        #expect(HotVerbs.parse(["create", "--preserve-fds", "many", "x"]) == nil, "not a number")
        #expect(HotVerbs.parse(["create", "--detach", "x"]) == nil, "run's flag on create")
        #expect(HotVerbs.parse(["create", "--bogus", "x"]) == nil)
        #expect(HotVerbs.parse(["delete", "--force=yes", "x"]) == nil, "a switch takes no value")
        #expect(HotVerbs.parse(["kill", "x", "TERM", "extra"]) == nil)
        #expect(HotVerbs.parse(["start"]) == nil)
    }
}
