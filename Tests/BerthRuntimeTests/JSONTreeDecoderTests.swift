@testable import BerthRuntime
import BerthJSON
import FoundationEssentials
import Testing

/// The runtime's JSON decoder against Foundation's: same values, the same DecodingError cases and coding
/// paths, strict JSON, bounded nesting.
@Suite struct JSONTreeDecoderTests {
    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONTreeDecoder.decode(type, from: Array(text.utf8))
    }

    @Test func decodesWhatFoundationDecodes() throws {
        var spec = DefaultSpec.make()
        spec.annotations = ["a": "b \"quoted\" \\ / é 😀", "empty": ""]
        spec.linux?.resources = Spec.Resources()
        spec.linux?.resources?.memory = Spec.Memory()
        spec.linux?.resources?.memory?.limit = 1 << 40
        spec.linux?.resources?.memory?.swap = -1
        spec.process?.oomScoreAdj = -999
        spec.process?.rlimits = [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: UInt64.max, soft: 1024)]
        let bytes = Array(try JSONEncoder().encode(spec))
        let ours = try JSONTreeDecoder.decode(Spec.self, from: bytes)
        let foundation = try JSONDecoder().decode(Spec.self, from: Data(bytes))
        #expect(ours == foundation)
        #expect(ours == spec)
    }

    @Test func escapesAndNumbers() throws {
        #expect(try decode(String.self, #""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#) == "a\"b\\c/d\u{8}\u{c}\n\r\té😀")
        #expect(try decode([Int].self, "[0, -1, 3.0, 1e2]") == [0, -1, 3, 100])
        #expect(try decode([Double].self, "[0.5, -2.5e-3]") == [0.5, -0.0025])
        #expect(try decode([UInt64].self, "[18446744073709551615]") == [UInt64.max])
        #expect(try decode([String: Bool].self, #"{"x": true, "y": false}"#) == ["x": true, "y": false])
        #expect(try decode([Int?].self, "[1, null]") == [1, nil])
    }

    @Test func errorsNameTheField() {
        func path(_ error: any Error) -> String {
            guard let decoding = error as? DecodingError else { return "not a DecodingError: \(error)" }
            switch decoding {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return SpecLoader.fieldPath(context.codingPath)
            case .keyNotFound(let key, let context):
                return SpecLoader.fieldPath(context.codingPath + [key])
            @unknown default:
                return "?"
            }
        }
        let base =
            #"{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["x"]},"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#
        do {
            _ = try decode(Spec.self, base.replacingFirst(#""uid":0"#, with: #""uid":"zero""#))
            Issue.record("a string uid decoded")
        } catch { #expect(path(error) == "process.user.uid") }
        do {
            _ = try decode(Spec.self, base.replacingFirst(#"{"type":"mount"}"#, with: #"{"type":7}"#))
            Issue.record("a numeric namespace type decoded")
        } catch { #expect(path(error) == "linux.namespaces[1].type") }
        do {
            _ = try decode(Spec.self, base.replacingFirst(#""cwd":"/","#, with: ""))
            Issue.record("a missing cwd decoded")
        } catch { #expect(path(error) == "process.cwd") }
        do {
            _ = try decode(Spec.self, base.replacingFirst(#""uid":0"#, with: #""uid":-1"#))
            Issue.record("a negative uid decoded")
        } catch { #expect(path(error) == "process.user.uid") }
        do {
            _ = try decode(Spec.self, base.replacingFirst(#""gid":0"#, with: #""gid":null"#))
            Issue.record("a null gid decoded")
        } catch { #expect(path(error) == "process.user.gid") }
    }

    /// What the runtime reads before the clone, straight from the tree, is what the full decoding says.
    @Test func launchEssentialsMatchTheDecodedSpec() throws {
        var spec = DefaultSpec.make()
        spec.process?.terminal = true
        spec.linux?.cgroupsPath = "/a/b"
        spec.linux?.namespaces?.append(Spec.Namespace(type: "user"))
        spec.linux?.namespaces?.append(Spec.Namespace(type: "time", path: "/proc/1/ns/time"))
        spec.linux?.uidMappings = [Spec.IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        spec.linux?.gidMappings = [Spec.IDMapping(containerID: 0, hostID: 200000, size: 1)]
        spec.linux?.timeOffsets = ["monotonic": Spec.TimeOffset(secs: 5, nanosecs: 7)]
        let bytes = Array(try JSONEncoder().encode(spec))
        let tree = try JSONParser.parse(bytes)
        #expect(LaunchEssentials(tree) == LaunchEssentials(spec))
        #expect(try SpecLoader.essentials(SpecLoader.parse(bytes)) == LaunchEssentials(spec))
        // 1.0 is an exact integer for Codable; the fast reader agrees rather than falling back.
        let text = String(decoding: bytes, as: UTF8.self).replacingFirst("\"size\":65536", with: "\"size\":65536.0")
        #expect(LaunchEssentials(try JSONParser.parse(Array(text.utf8)))?.uidMappings.first?.size == 65536)
    }

    /// The init reads its request (JSONEncoder's output) from the tree: every field, with or without a spec.
    @Test func initRequestRoundTrips() throws {
        let spec = DefaultSpec.make()
        var request = InitRequest(
            mode: .exec, containerID: "c", bundle: "/b", rootfs: "/b/rootfs", spec: spec,
            process: spec.process, noPivot: true, noNewKeyring: true, preserveFds: 2,
            consoleFd: 7, fifoFd: nil, createdAt: "2026-11-29T00:00:00Z", mountNamespaceFd: 9)
        var read = try #require(try InitRequest(tree: JSONParser.parse(Array(JSONEncoder().encode(request)))))
        #expect(read.mode == .exec && read.containerID == "c" && read.bundle == "/b" && read.rootfs == "/b/rootfs")
        #expect(read.spec == spec && read.process == spec.process)
        #expect(read.noPivot && read.noNewKeyring && read.preserveFds == 2 && read.consoleFd == 7 && read.fifoFd == nil)
        #expect(read.createdAt == "2026-11-29T00:00:00Z" && read.mountNamespaceFd == 9 && !read.awaitsCgroups)
        request = InitRequest(
            mode: .create, containerID: "d", bundle: "/b", rootfs: "/r", spec: nil, process: nil,
            noPivot: false, noNewKeyring: false, preserveFds: 0, consoleFd: nil, fifoFd: 5, createdAt: "t")
        request.awaitsCgroups = true
        read = try #require(try InitRequest(tree: JSONParser.parse(Array(JSONEncoder().encode(request)))))
        #expect(
            read.mode == .create && read.spec == nil && read.process == nil && read.fifoFd == 5 && read.awaitsCgroups)
        #expect(try InitRequest(tree: JSONParser.parse(Array(#"{"mode":"create"}"#.utf8))) == nil, "missing fields")
    }

    @Test func rejectsWhatIsNotJSON() {
        for text in [
            "", "{", "{\"a\":1,}", "[1,]", "[1 2]", "{'a':1}", "tru", "01", "1.", "-", "\"a\u{1}\"", "\"\\x\"",
            "\"\\ud800\"", "{\"a\":1} x", "[1] // comment", "nul",
        ] {
            #expect(throws: DecodingError.self, "\(text.debugDescription)") { try decode([String: Int].self, text) }
        }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: DecodingError.self, "nesting is bounded") { try decode([String].self, deep) }
    }
}
