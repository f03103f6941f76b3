/// Signal names and numbers on Linux (x86_64/arm64 numbering), parsed the way `runc kill` parses them.
public enum Signals {
    /// glibc reserves 32 and 33 for its threads, so SIGRTMIN as programs see it is 34.
    public static let realtimeMinimum: Int32 = 34
    public static let realtimeMaximum: Int32 = 64

    /// The standard signals by name (without "SIG"), in number order; aliases (IOT, POLL) follow their
    /// canonical name. This is the table `features` reports.
    public static let names: [(name: String, number: Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6),
        ("BUS", 7), ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13),
        ("ALRM", 14), ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19),
        ("TSTP", 20), ("TTIN", 21), ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25),
        ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ]

    /// Every signal name with its "SIG" prefix, including SIGRTMIN, SIGRTMIN+1 … SIGRTMAX-1, SIGRTMAX.
    public static var allNames: [String] {
        var result = names.map { "SIG" + $0.name }
        result.append("SIGRTMIN")
        for offset in 1..<(realtimeMaximum - realtimeMinimum) { result.append("SIGRTMIN+\(offset)") }
        result.append("SIGRTMAX")
        return result
    }

    /// Parses "KILL", "SIGKILL", "kill", "9", "SIGRTMIN+3", "RTMAX-2" into a signal number.
    public static func parse(_ text: String) throws(RuntimeError) -> Int32 {
        let trimmed = text.trimmingSpaces
        if let number = Int32(trimmed) {
            guard number >= 1 && number <= realtimeMaximum else {
                throw RuntimeError.invalidConfig(
                    field: "signal", reason: "signal number \(number) is out of range 1…\(realtimeMaximum)")
            }
            return number
        }
        var name = trimmed.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let entry = names.first(where: { $0.name == name }) { return entry.number }
        if let value = realtime(name) { return value }
        throw RuntimeError.invalidConfig(field: "signal", reason: "unknown signal \"\(text)\"")
    }

    /// The canonical name ("SIGKILL", "SIGRTMIN+3") of a signal number, if it has one.
    public static func name(of number: Int32) -> String? {
        if let entry = names.first(where: { $0.number == number }) { return "SIG" + entry.name }
        if number == realtimeMinimum { return "SIGRTMIN" }
        if number == realtimeMaximum { return "SIGRTMAX" }
        if number > realtimeMinimum && number < realtimeMaximum { return "SIGRTMIN+\(number - realtimeMinimum)" }
        return nil
    }

    private static func realtime(_ name: String) -> Int32? {
        for (base, value, sign) in [("RTMIN", realtimeMinimum, Int32(1)), ("RTMAX", realtimeMaximum, Int32(-1))] {
            guard name.hasPrefix(base) else { continue }
            let rest = name.dropFirst(base.count)
            if rest.isEmpty { return value }
            let expectedSign: Character = sign > 0 ? "+" : "-"
            guard rest.first == expectedSign, let offset = Int32(rest.dropFirst()), offset >= 0 else { return nil }
            let result = value + sign * offset
            return result >= realtimeMinimum && result <= realtimeMaximum ? result : nil
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" || s.last == "\n" { s.removeLast() }
        return String(s)
    }
}
