import Testing
@testable import BerthRuntime

@Suite struct SignalTests {
    @Test func namesNumbersAndPrefixesParseLikeRunc() throws {
        #expect(try Signals.parse("KILL") == 9)
        #expect(try Signals.parse("SIGKILL") == 9)
        #expect(try Signals.parse("sigterm") == 15)
        #expect(try Signals.parse("9") == 9)
        #expect(try Signals.parse("HUP") == 1)
        #expect(try Signals.parse("SIGWINCH") == 28)
        #expect(try Signals.parse("IOT") == 6)
        #expect(try Signals.parse(" TERM ") == 15)
    }

    @Test func realtimeSignals() throws {
        #expect(try Signals.parse("SIGRTMIN") == 34)
        #expect(try Signals.parse("SIGRTMIN+3") == 37)
        #expect(try Signals.parse("RTMAX-2") == 62)
        #expect(try Signals.parse("SIGRTMAX") == 64)
        #expect(Signals.name(of: 37) == "SIGRTMIN+3")
        #expect(Signals.name(of: 9) == "SIGKILL")
        #expect(Signals.name(of: 6) == "SIGABRT")
        #expect(Signals.name(of: 99) == nil)
    }

    @Test func badSignalsAreErrors() {
        for bad in ["FOO", "SIGRTMIN+31", "SIGRTMAX+1", "RTMIN-1", "0", "65", "-9", ""] {
            #expect(throws: RuntimeError.self, "\(bad)") { try Signals.parse(bad) }
        }
    }

    @Test func allNamesCoverEveryNumberOnce() throws {
        let names = Signals.allNames
        #expect(names.contains("SIGKILL") && names.contains("SIGRTMIN+1") && names.contains("SIGRTMAX"))
        #expect(!names.contains("SIGRTMIN+30"))
        for name in names { _ = try Signals.parse(name) }
    }
}
