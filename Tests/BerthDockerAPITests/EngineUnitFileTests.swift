#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials
import Testing

/// packaging/systemd/berth-engine.service, the unit `make install` puts in place: systemd accepts it,
/// and it keeps what the daemon relies on.
struct EngineUnitFileTests {
    static let unit =
        FileSystem.parent(of: FileSystem.parent(of: FileSystem.parent(of: #filePath)))
        + "/packaging/systemd/berth-engine.service"

    static let systemdAnalyze: String? = ChildProcess.lookup(
        "systemd-analyze", path: "/usr/bin:/bin:/usr/sbin:/sbin")

    /// The unit's `[Section]` → key → values (a key may repeat), comments and blank lines skipped.
    static func parse(_ text: String) -> [String: [String: [String]]] {
        var sections: [String: [String: [String]]] = [:]
        var current = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmed
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast())
                sections[current, default: [:]] = sections[current] ?? [:]
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            sections[current, default: [:]][line[..<equals].trimmed, default: []].append(
                line[line.index(after: equals)...].trimmed)
        }
        return sections
    }

    /// Containers are children of their monitors, in the service's cgroup: stopping or restarting the
    /// daemon must signal the daemon alone (KillMode=process), and systemd must wait for its
    /// READY=1 (Type=notify) before units ordered after it start using the socket.
    @Test func theUnitKeepsKillModeProcessAndTypeNotify() throws {
        let unit = Self.parse(try FileSystem.readString(Self.unit))
        let service = try #require(unit["Service"], "no [Service] section: \(unit.keys)")
        #expect(service["KillMode"] == ["process"], "\(service["KillMode"] ?? [])")
        #expect(service["Type"] == ["notify"], "\(service["Type"] ?? [])")
        let start = try #require(service["ExecStart"]?.first)
        #expect(start.hasPrefix("/usr/local/bin/berth engine"), "\(start)")
        #expect(unit["Install"]?["WantedBy"] == ["multi-user.target"])
    }

    /// The parser above reads what it should: a unit with other values is told apart.
    @Test func theParserSeesOtherValues() {
        let unit = Self.parse("# c\n[Service]\nType=simple\nKillMode = control-group\n\n[Install]\nWantedBy=x\n")
        #expect(unit["Service"]?["Type"] == ["simple"])
        #expect(unit["Service"]?["KillMode"] == ["control-group"])
        #expect(unit["Install"]?["WantedBy"] == ["x"])
    }

    /// `systemd-analyze verify` finds nothing wrong with the unit (where systemd-analyze exists: it is
    /// not installed for this). The ExecStart binary need not be installed here: verify checks that
    /// it exists, so the unit is verified from a copy naming a program that does.
    @Test(.enabled(if: systemdAnalyze != nil, "no systemd-analyze"))
    func systemdAnalyzeVerifyAcceptsTheUnit() throws {
        var template = Array("/tmp/berth-unit-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { _ = try? ChildProcess.run("/bin/rm", arguments: ["rm", "-rf", directory], environment: []) }
        var text = try FileSystem.readString(Self.unit)
        if !FileSystem.exists("/usr/local/bin/berth") {
            text = text.replacing("ExecStart=/usr/local/bin/berth ", with: "ExecStart=/bin/true ")
        }
        let copy = directory + "/berth-engine.service"
        try FileSystem.writeAtomically(copy, Array(text.utf8))
        let verified = try ChildProcess.run(
            Self.systemdAnalyze!, arguments: ["systemd-analyze", "verify", "--man=no", copy],
            environment: [standardPath, "SYSTEMD_LOG_LEVEL=notice"])
        #expect(verified.status == .exited(0), "\(verified.stderrText)\(verified.stdoutText)")
        // Anything it says about this unit is a complaint, even when it exits 0.
        let complaints = (verified.stderrText + verified.stdoutText).split(separator: "\n").filter {
            $0.contains("berth-engine.service")
        }
        #expect(complaints.isEmpty, "\(complaints)")

        // And verify does reject a broken unit, so the check above means something.
        let broken = directory + "/broken.service"
        try FileSystem.writeAtomically(broken, Array("[Service]\nType=notify\nKillMode=sideways\n".utf8))
        let rejected = try ChildProcess.run(
            Self.systemdAnalyze!, arguments: ["systemd-analyze", "verify", "--man=no", broken],
            environment: [standardPath, "SYSTEMD_LOG_LEVEL=notice"])
        #expect(rejected.status != .exited(0), "\(rejected.stderrText)")
        #expect(rejected.stderrText.contains("kill mode"), "\(rejected.stderrText)")
    }
}
