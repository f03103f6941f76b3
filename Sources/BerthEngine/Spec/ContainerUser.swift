#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// Resolves docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`, either part a name or a number)
/// in the container's own /etc/passwd and /etc/group, as moby/sys/user's GetExecUser does.
///
/// The files are opened inside the root file system (openat2 RESOLVE_IN_ROOT): an image whose
/// /etc/passwd is a symlink to /etc/shadow, or to `../../../etc/passwd`, reads its own files, never the
/// host's. Missing files are not an error (numeric ids still work), as in docker.
public enum ContainerUser {
    static let maximumID = 2_147_483_647

    /// The process user for `userSpec` (empty: root) in `rootfs`. `additionalGids` is docker's: the
    /// primary group first, then every group in /etc/group listing the user by name (only when no group
    /// was given), then `groupAdd` (`--group-add`: group names or numbers).
    public static func resolve(_ userSpec: String, groupAdd: [String] = [], rootfs: String) throws(EngineError)
        -> Spec.User
    {
        let root: Root
        do {
            root = try Root(path: rootfs)
        } catch {
            throw .system(error, context: "opening the container's root file system")
        }
        let passwd = try readDatabase("/etc/passwd", in: root)
        let group = try readDatabase("/etc/group", in: root)
        return try resolve(userSpec, groupAdd: groupAdd, passwd: passwd, group: group)
    }

    /// The same rule over the files' contents (nil: the file does not exist).
    public static func resolve(
        _ userSpec: String, groupAdd: [String] = [], passwd: String?,
        group: String?
    ) throws(EngineError) -> Spec.User {
        let fields = userSpec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let userArg = fields.first ?? "", groupArg = fields.count > 1 ? fields[1] : ""
        let uidArg = Int(userArg), gidArg = Int(groupArg)
        var uid = 0, gid = 0
        var supplementary: [Int] = []

        var matchedName = ""
        if let passwd {
            let match = entries(passwd, skipComments: false).first { entry in
                let entryUID = Int(field(entry, 2)) ?? 0
                if userArg.isEmpty { return entryUID == 0 }
                if let uidArg { return entryUID == uidArg }
                return field(entry, 0) == userArg
            }
            if let match {
                matchedName = field(match, 0)
                uid = Int(field(match, 2)) ?? 0
                gid = Int(field(match, 3)) ?? 0
            }
        }
        if matchedName.isEmpty && !userArg.isEmpty {
            guard let uidArg else {
                throw .invalidArgument(
                    what: "user", reason: "unable to find user \(userArg): no matching entries in passwd file")
            }
            guard (0...maximumID).contains(uidArg) else {
                throw .invalidArgument(what: "user", reason: "uids and gids must be in range 0-\(maximumID)")
            }
            uid = uidArg
        }

        if !groupArg.isEmpty || !matchedName.isEmpty {
            let groups = group.map { entries($0, skipComments: true) } ?? []
            if !groupArg.isEmpty {
                let match = groups.first { entry in
                    if let gidArg { return (Int(field(entry, 2)) ?? 0) == gidArg }
                    return field(entry, 0) == groupArg
                }
                if let match {
                    gid = Int(field(match, 2)) ?? 0
                } else {
                    guard let gidArg else {
                        throw .invalidArgument(
                            what: "user", reason: "unable to find group \(groupArg): no matching entries in group file")
                    }
                    guard (0...maximumID).contains(gidArg) else {
                        throw .invalidArgument(what: "user", reason: "uids and gids must be in range 0-\(maximumID)")
                    }
                    gid = gidArg
                }
            } else {
                supplementary = groups.filter { entry in
                    field(entry, 3).split(separator: ",").contains { $0 == matchedName }
                }.map { Int(field($0, 2)) ?? 0 }
            }
        }
        let added = try additionalGroups(groupAdd, group: group)
        return Spec.User(
            uid: UInt32(truncatingIfNeeded: uid), gid: UInt32(truncatingIfNeeded: gid),
            additionalGids: ([gid] + supplementary + added).map { UInt32(truncatingIfNeeded: $0) })
    }

    /// `--group-add` entries as gids (moby/sys/user GetAdditionalGroups): a group's name or number from
    /// /etc/group, else a number taken as is; each gid once, in the order given.
    static func additionalGroups(_ names: [String], group: String?) throws(EngineError) -> [Int] {
        let groups = group.map { entries($0, skipComments: true) } ?? []
        var result: [Int] = []
        for name in names {
            let match = groups.first { field($0, 0) == name || field($0, 2) == name }
            let gid: Int
            if let match {
                gid = Int(field(match, 2)) ?? 0
            } else {
                guard let number = Int(name) else {
                    throw .invalidArgument(
                        what: "--group-add", reason: "Unable to find group \(name): no matching entries in group file")
                }
                guard (0...maximumID).contains(number) else {
                    throw .invalidArgument(what: "--group-add", reason: "uids and gids must be in range 0-\(maximumID)")
                }
                gid = number
            }
            if !result.contains(gid) { result.append(gid) }
        }
        return result
    }

    /// Non-empty lines split at `:`; group files also skip `#` comments (passwd files do not, in Go's).
    static func entries(_ text: String, skipComments: Bool) -> [[Substring]] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let trimmed = String(line).trimmingCharacters(in: " \t\r")
            if trimmed.isEmpty || (skipComments && trimmed.hasPrefix("#")) { return nil }
            return Substring(trimmed).split(separator: ":", omittingEmptySubsequences: false)
        }
    }

    static func field(_ entry: [Substring], _ index: Int) -> String {
        index < entry.count ? String(entry[index]) : ""
    }

    /// Reads a small regular file inside `root`; nil when it does not exist. A FIFO or device there
    /// would block or never end: refused rather than read.
    static func readDatabase(_ path: String, in root: Root) throws(EngineError) -> String? {
        let descriptor: FileDescriptor
        do {
            descriptor = try root.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        } catch  where error.errno == ENOENT || error.errno == ENOTDIR {
            return nil
        } catch {
            throw .system(error, context: "reading the container's \(path)")
        }
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw .invalidArgument(what: "user", reason: "the container's \(path) is not a regular file")
        }
        do {
            return String(decoding: try descriptor.readAll(), as: UTF8.self)
        } catch {
            throw .system(error, context: "reading the container's \(path)")
        }
    }
}
