#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthNetwork

/// Real root: uid 0 in the initial user namespace (identity /proc/self/uid_map), and the CNI plugins
/// installed. Root-gated suites are skipped otherwise.
let identityRoot: Bool = {
    guard getuid() == 0, let map = try? FileSystem.readString("/proc/self/uid_map") else { return false }
    return map.split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["0", "0", "4294967295"]
}()

let cniPluginsInstalled = CNI.defaultPluginDirectories.contains { access("\($0)/bridge", X_OK) == 0 }

/// A fresh directory under /tmp, removed by `body`'s caller through `removeTree`.
func temporaryDirectory(_ prefix: String = "berth-net-test") -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(path != nil, "mkdtemp failed")
    return String(cString: path!)
}

/// A short random lower-case hex string for unique names (`bt3fa9c1`).
func randomSuffix(_ count: Int = 6) -> String {
    var generator = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator)! })
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    try FileSystem.writeAtomically(path, Array(text.utf8), mode: mode, durable: false)
}
