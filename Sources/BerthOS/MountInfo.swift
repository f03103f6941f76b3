/// /proc/<pid>/mountinfo, read byte by byte.
///
/// The runtime reads the mount table twice per container (its cgroup layout, and the init's cgroup
/// mount); splitting the text into Swift strings cost ~0.5 ms in each fresh process, this a tenth of it.
public enum MountInfo {
    public struct Entry: Sendable, Equatable {
        /// Field 4: the root of the mount within its filesystem.
        public var root: String
        /// Field 5, unescaped.
        public var mountPoint: String
        public var fileSystemType: String
        /// The super options (after the source), e.g. "rw,memory" for a cgroup v1 mount.
        public var superOptions: String

        public init(root: String, mountPoint: String, fileSystemType: String, superOptions: String) {
            self.root = root
            self.mountPoint = mountPoint
            self.fileSystemType = fileSystemType
            self.superOptions = superOptions
        }
    }

    /// The entries whose filesystem type `include` accepts (strings are made only for those).
    public static func entries(_ bytes: [UInt8], include: (ArraySlice<UInt8>) -> Bool = { _ in true }) -> [Entry] {
        var result: [Entry] = []
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != 0x0A { lineEnd += 1 }
            if let entry = parseLine(bytes[lineStart..<lineEnd], include: include) { result.append(entry) }
            lineStart = lineEnd + 1
        }
        return result
    }

    /// Only cgroup and cgroup2 mounts.
    public static func cgroupEntries(_ bytes: [UInt8]) -> [Entry] {
        entries(bytes) { type in
            type.count >= 6 && type.starts(with: "cgroup".utf8)
                && (type.count == 6 || (type.count == 7 && type.last == UInt8(ascii: "2")))
        }
    }

    private static func parseLine(_ line: ArraySlice<UInt8>, include: (ArraySlice<UInt8>) -> Bool) -> Entry? {
        // Fields: id parent major:minor root mountpoint options [optional…] - type source superoptions
        var fields: [Range<Int>] = []
        var index = line.startIndex
        while index < line.endIndex {
            while index < line.endIndex, line[index] == 0x20 { index += 1 }
            let start = index
            while index < line.endIndex, line[index] != 0x20 { index += 1 }
            if start < index { fields.append(start..<index) }
        }
        guard let dash = fields.firstIndex(where: { $0.count == 1 && line[$0.lowerBound] == UInt8(ascii: "-") }),
            dash >= 6, fields.count > dash + 3
        else { return nil }
        let type = line[fields[dash + 1]]
        guard include(type) else { return nil }
        return Entry(
            root: unescape(line[fields[3]]), mountPoint: unescape(line[fields[4]]),
            fileSystemType: String(decoding: type, as: UTF8.self),
            superOptions: String(decoding: line[fields[dash + 3]], as: UTF8.self))
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    public static func unescape(_ field: ArraySlice<UInt8>) -> String {
        guard field.contains(UInt8(ascii: "\\")) else { return String(decoding: field, as: UTF8.self) }
        var bytes: [UInt8] = []
        var i = field.startIndex
        while i < field.endIndex {
            if field[i] == UInt8(ascii: "\\"), i + 3 < field.endIndex,
                (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[i + 1]),
                (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[i + 2]),
                (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[i + 3])
            {
                let value =
                    (UInt32(field[i + 1] - 48) << 6) | (UInt32(field[i + 2] - 48) << 3) | UInt32(field[i + 3] - 48)
                bytes.append(UInt8(truncatingIfNeeded: value))
                i += 4
            } else {
                bytes.append(field[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
