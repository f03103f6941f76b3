/// Parsers for `docker run`'s option strings, shared by the CLI and the Docker API: each is a pure
/// function that matches docker's accepted forms and throws ``EngineError/invalidArgument(what:reason:)``
/// naming the option. Sizes, CPUs, durations and signals are here; mounts, ports, devices, the
/// environment, health checks and the rest in the extensions beside this file.
public enum RunOptionParser {
    /// docker's RAMInBytes (go-units): a decimal number with an optional binary unit `b`, `k`, `m`, `g`,
    /// `t`, `p` (case-insensitive, optionally followed by `b` or `ib`): `512m`, `1.5GiB`, `1024`.
    public static func parseMemory(_ text: String, option: String = "--memory") throws(EngineError) -> Int64 {
        let invalid = EngineError.invalidArgument(what: option, reason: "invalid size: '\(text)'")
        guard let separator = text.lastIndex(where: { $0.isASCII && ($0.isNumber || $0 == "." || $0 == " ") }) else {
            throw invalid
        }
        let number = text[separator] == " " ? text[..<separator] : text[...separator]
        let suffix = text[text.index(after: separator)...].lowercased()
        guard let value = Double(number), value >= 0, value.isFinite else { throw invalid }
        let badSuffix = EngineError.invalidArgument(what: option, reason: "invalid suffix: '\(suffix)'")
        var multiplier = 1.0
        if !suffix.isEmpty {
            guard suffix.count <= 3 else { throw badSuffix }
            let first = suffix.first!
            if first == "b" {
                guard suffix.count == 1 else { throw badSuffix }
            } else {
                guard let power = ["k": 1.0, "m": 2.0, "g": 3.0, "t": 4.0, "p": 5.0][String(first)] else {
                    throw badSuffix
                }
                let rest = suffix.dropFirst()
                guard rest.isEmpty || rest == "b" || rest == "ib" else { throw badSuffix }
                multiplier = Double(1 << (10 * Int(power)))
            }
        }
        let bytes = value * multiplier
        guard bytes < 9.2e18 else { throw invalid }
        return Int64(bytes)
    }

    /// `--memory-swap`: a size as ``parseMemory(_:option:)``, or -1 for unlimited swap (docker's MemSwapBytes).
    public static func parseMemorySwap(_ text: String) throws(EngineError) -> Int64 {
        text == "-1" ? -1 : try parseMemory(text, option: "--memory-swap")
    }

    /// `--cpus 1.5` → 1_500_000_000 nano-CPUs. Like docker's big.Rat parse: a decimal (with an optional
    /// exponent) or a fraction `3/2`; more precision than a nano-CPU is an error.
    public static func parseCPUs(_ text: String) throws(EngineError) -> Int64 {
        let notNumber = EngineError.invalidArgument(
            what: "--cpus", reason: "failed to parse \(text) as a rational number")
        let tooPrecise = EngineError.invalidArgument(what: "--cpus", reason: "value is too precise")
        if let slash = text.firstIndex(of: "/") {
            guard let numerator = Int64(text[..<slash]), let denominator = Int64(text[text.index(after: slash)...]),
                denominator != 0
            else { throw notNumber }
            let (scaled, overflow) = numerator.multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow else { throw notNumber }
            guard scaled % denominator == 0 else { throw tooPrecise }
            return scaled / denominator
        }
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(text[text.index(after: e)...]) else { throw notNumber }
            mantissa = text[..<e]
            exponent = value
        }
        var negative = false
        if mantissa.first == "-" || mantissa.first == "+" {
            negative = mantissa.first == "-"; mantissa = mantissa.dropFirst()
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard !(whole.isEmpty && fraction.isEmpty), (whole + fraction).allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw notNumber
        }
        var digits = Array(whole + fraction)
        // value = digits × 10^(exponent − fraction digits); in nano-CPUs, 9 more.
        var scale = exponent - fraction.count + 9
        while scale < 0 {
            guard let last = digits.last else { break }
            guard last == "0" else { throw tooPrecise }
            digits.removeLast()
            scale += 1
        }
        guard scale <= 30 else { throw notNumber }
        digits += Array(repeating: "0", count: max(0, scale))
        var result: Int64 = 0
        for digit in digits {
            let (times, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(digit.wholeNumberValue!))
            guard !o1, !o2 else { throw notNumber }
            result = sum
        }
        return negative ? -result : result
    }

    /// Go's time.ParseDuration, in nanoseconds: `30s`, `1m30s`, `1.5h`, `500ms`, `-2m`, `0`; units ns,
    /// us (µs), ms, s, m, h.
    public static func parseDuration(_ text: String, option: String = "duration") throws(EngineError) -> Int64 {
        let invalid = EngineError.invalidArgument(what: option, reason: "time: invalid duration \"\(text)\"")
        var rest = Substring(text)
        var negative = false
        if rest.first == "-" || rest.first == "+" { negative = rest.first == "-"; rest = rest.dropFirst() }
        if rest == "0" { return 0 }
        guard !rest.isEmpty else { throw invalid }
        let units: [(String, Int64)] = [
            ("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000), ("ms", 1_000_000),
            ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ]
        var nanoseconds: Int64 = 0
        while !rest.isEmpty {
            // The whole part scaled exactly and the fraction in floating point, as Go does.
            let whole = rest.prefix(while: { $0.isASCII && $0.isNumber })
            rest = rest[whole.endIndex...]
            var fraction = Substring("")
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: { $0.isASCII && $0.isNumber })
                rest = rest[fraction.endIndex...]
            }
            guard !(whole.isEmpty && fraction.isEmpty) else { throw invalid }
            let unit = rest.prefix(while: { !($0.isASCII && ($0.isNumber || $0 == ".")) })
            guard !unit.isEmpty else {
                throw .invalidArgument(what: option, reason: "time: missing unit in duration \"\(text)\"")
            }
            guard let scale = units.first(where: { $0.0 == unit })?.1 else {
                throw .invalidArgument(what: option, reason: "time: unknown unit \"\(unit)\" in duration \"\(text)\"")
            }
            rest = rest[unit.endIndex...]
            guard let wholeValue = whole.isEmpty ? 0 : Int64(whole) else { throw invalid }
            let (product, overflow) = wholeValue.multipliedReportingOverflow(by: scale)
            guard !overflow else { throw invalid }
            var fractional: Int64 = 0, divisor: Int64 = 1
            for digit in fraction.prefix(18) {
                fractional = fractional * 10 + Int64(digit.wholeNumberValue!)
                divisor *= 10
            }
            let (sum, overflow2) = nanoseconds.addingReportingOverflow(product)
            guard !overflow2 else { throw invalid }
            let (sum2, overflow3) = sum.addingReportingOverflow(
                Int64(Double(fractional) * (Double(scale) / Double(divisor))))
            guard !overflow3 else { throw invalid }
            nanoseconds = sum2
        }
        return negative ? -nanoseconds : nanoseconds
    }

    /// Linux signal names docker accepts (moby/sys/signal), without the `SIG` prefix.
    static let signalNumbers: [String: Int32] = {
        var table: [String: Int32] = [
            "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
            "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
            "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24,
            "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
            "RTMIN": 34, "RTMAX": 64,
        ]
        for offset in 1...15 { table["RTMIN+\(offset)"] = 34 + Int32(offset) }
        for offset in 1...14 { table["RTMAX-\(offset)"] = 64 - Int32(offset) }
        return table
    }()

    /// `SIGTERM`, `term`, `15`, `RTMIN+3` → the signal number; docker's names and numbers for Linux
    /// (32 and 33 are glibc's and have no name, so they are refused as docker does).
    public static func parseSignal(_ text: String, option: String = "--signal") throws(EngineError) -> Int32 {
        let valid = Set(signalNumbers.values)
        if let number = Int32(text) {
            guard valid.contains(number) else {
                throw .invalidArgument(what: option, reason: "invalid signal: \(text)")
            }
            return number
        }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        guard let number = signalNumbers[name] else {
            throw .invalidArgument(what: option, reason: "invalid signal: \(text)")
        }
        return number
    }
}
