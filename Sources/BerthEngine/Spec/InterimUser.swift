import BerthOCI

extension SpecBuilder {
    /// Placeholder: numeric `uid[:gid]` only, until names are resolved in the rootfs.
    public static func resolveUser(_ text: String, rootfs: String) throws(EngineError) -> Spec.User {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let uid = UInt32(parts[0]) else { throw .invalidArgument(what: "user", reason: "unable to find user \(text): no matching entries in passwd file") }
        let gid = parts.count > 1 ? UInt32(parts[1]) ?? 0 : 0
        return Spec.User(uid: uid, gid: gid)
    }
}
