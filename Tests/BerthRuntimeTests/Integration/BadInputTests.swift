#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import FoundationEssentials
import Testing

@Suite("Bad config.json (root)", .enabled(if: isRealRoot && hasBusybox))
struct BadInputTests {
    /// Creates with a broken config and checks the error names the field and nothing is left behind.
    func expectRejected(
        _ box: Sandbox, config: String, mentions: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let bundle = box.bundle("bad-\(UInt32.random(in: 0..<UInt32.max))", script: "true")
        try FileSystem.writeAtomically(bundle + "/config.json", Array(config.utf8))
        let id = box.id(String(UInt32.random(in: 0..<UInt32.max), radix: 36))
        let output = box.runtime(["create", "--bundle", bundle, id])
        #expect(output.status == 1, sourceLocation: sourceLocation)
        #expect(output.stderr.contains(mentions), "\(output.stderr)", sourceLocation: sourceLocation)
        #expect(!FileSystem.exists(box.root + "/" + id), "state directory left behind", sourceLocation: sourceLocation)
        #expect(
            !FileSystem.exists("/sys/fs/cgroup/memory/berth/\(id)"), "cgroup left behind",
            sourceLocation: sourceLocation)
        #expect(mounts(under: box.directory).isEmpty, "mount left behind", sourceLocation: sourceLocation)
    }

    func valid(_ box: Sandbox) throws -> String {
        let bundle = box.bundle("template", script: "true")
        return try FileSystem.readString(bundle + "/config.json")
    }

    @Test func malformedAndInvalidConfigs() throws {
        let box = Sandbox("bad")
        let good = try valid(box)
        try expectRejected(box, config: "{not json", mentions: "malformed JSON")
        try expectRejected(
            box, config: good.replacingFirst("\"ociVersion\":\"1.2.0\"", with: "\"ociVersion\":12"),
            mentions: "ociVersion: expected a string")
        try expectRejected(
            box, config: good.replacingFirst("\"type\":\"pid\"", with: "\"type\":\"pidz\""),
            mentions: "linux.namespaces[0].type: unknown namespace type")
        try expectRejected(
            box, config: good.replacingFirst("\"destination\":\"\\/proc\"", with: "\"destination\":\"proc\""),
            mentions: "mounts[0].destination: must be an absolute path")
        try expectRejected(
            box, config: good.replacingFirst("\"args\":[\"\\/bin\\/sh\",\"-c\",\"true\"]", with: "\"args\":[]"),
            mentions: "process.args")
        try expectRejected(
            box, config: good.replacingFirst("\"path\":\"rootfs\"", with: "\"path\":\"no-such-rootfs\""),
            mentions: "root.path")
        try expectRejected(
            box, config: good.replacingFirst("\"uid\":0", with: "\"uid\":\"zero\""), mentions: "process.user.uid")
        try expectRejected(
            box, config: good.replacingFirst("\"cwd\":\"\\/\"", with: "\"cwd\":\"relative\""), mentions: "process.cwd")
    }

    /// A valid config whose setup fails inside the init (a bind source that does not exist): the init's
    /// error reaches the caller even when the init gives up while the runtime is still making and joining
    /// its cgroups — repeated, since which side gets there first varies.
    @Test func setupFailingInsideTheInitIsReported() throws {
        let box = Sandbox("initfail")
        let bundle = box.bundle("broken-bind", script: "true") { spec in
            spec.mounts?.append(
                Spec.Mount(
                    destination: "/mnt/gone", type: "bind", source: "/nonexistent-berth-source", options: ["rbind"]))
        }
        let config = try FileSystem.readString(bundle + "/config.json")
        let index = (try SpecLoader.load(bundle: bundle).mounts?.count ?? 1) - 1
        for _ in 0..<10 {
            try expectRejected(box, config: config, mentions: "mounts[\(index)] (/mnt/gone)")
        }
    }

    @Test func missingConfigIsNamed() throws {
        let box = Sandbox("noconfig")
        let output = box.runtime(["create", "--bundle", box.directory, box.id()])
        #expect(output.status == 1)
        #expect(output.stderr.contains("no config.json in bundle"))
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else {
            Issue.record("test template lacks \(target)")
            return self
        }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
