/// One tar entry's metadata, with PAX and GNU extensions already applied.
public struct TarEntry: Sendable {
    public enum Kind: Sendable, Equatable {
        case regular, hardLink, symlink, characterDevice, blockDevice, directory, fifo
    }
    public var path: String
    public var linkTarget: String = ""
    public var kind: Kind
    public var mode: UInt32 = 0o644
    public var uid: Int = 0
    public var gid: Int = 0
    public var size: Int64 = 0
    public var mtimeSeconds: Int = 0
    public var mtimeNanoseconds: Int = 0
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0
    public var xattrs: [(String, [UInt8])] = []

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }
}

/// What a ``TarReader`` drives: entry headers, then the entry's data in pieces, then its end.
protocol TarSink: AnyObject {
    func begin(_ entry: TarEntry) throws
    func data(_ bytes: UnsafeRawBufferPointer) throws
    func end() throws
}

enum TarError: Error, CustomStringConvertible {
    case badHeader(String)
    case unsupported(String)
    case truncated
    var description: String {
        switch self {
        case .badHeader(let m): return "malformed tar header: \(m)"
        case .unsupported(let m): return "unsupported tar entry: \(m)"
        case .truncated: return "tar stream ended in the middle of an entry (truncated layer)"
        }
    }
}

/// A push-driven streaming tar reader (ustar, PAX, GNU long names). Feed it bytes in any chunking.
final class TarReader {
    private enum State {
        case header
        case data(remaining: Int64, padding: Int)
        case skip(remaining: Int64)
        case extended(type: UInt8, remaining: Int, padding: Int)
        case finished
    }

    private let sink: any TarSink
    private var state: State = .header
    private var block: [UInt8] = []
    private var extended: [UInt8] = []
    private var pax: [String: String] = [:]
    private var paxXattrs: [(String, [UInt8])] = []
    private var globalPax: [String: String] = [:]
    private var longName: String?
    private var longLink: String?
    private var zeroBlocks = 0
    private(set) var entries = 0

    init(sink: any TarSink) {
        self.sink = sink
        block.reserveCapacity(512)
    }

    var isFinished: Bool { if case .finished = state { return true }; return false }

    func feed(_ input: UnsafeRawBufferPointer) throws {
        var offset = 0
        let count = input.count
        while offset < count {
            switch state {
            case .finished:
                return  // trailing padding after the end-of-archive blocks
            case .header:
                let take = min(512 - block.count, count - offset)
                if block.isEmpty && take == 512 {
                    try header(UnsafeRawBufferPointer(rebasing: input[offset..<offset + 512]))
                } else {
                    block.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<offset + take]))
                    if block.count == 512 {
                        let full = block
                        block.removeAll(keepingCapacity: true)
                        try full.withUnsafeBytes { try header($0) }
                    }
                }
                offset += take
            case .data(let remaining, let padding):
                let take = Int(min(remaining, Int64(count - offset)))
                if take > 0 { try sink.data(UnsafeRawBufferPointer(rebasing: input[offset..<offset + take])) }
                offset += take
                let left = remaining - Int64(take)
                if left == 0 {
                    try sink.end()
                    state = padding > 0 ? .skip(remaining: Int64(padding)) : .header
                } else {
                    state = .data(remaining: left, padding: padding)
                }
            case .skip(let remaining):
                let take = Int(min(remaining, Int64(count - offset)))
                offset += take
                state = remaining - Int64(take) == 0 ? .header : .skip(remaining: remaining - Int64(take))
            case .extended(let type, let remaining, let padding):
                let take = min(remaining, count - offset)
                extended.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<offset + take]))
                offset += take
                if remaining - take == 0 {
                    try finishExtended(type)
                    state = padding > 0 ? .skip(remaining: Int64(padding)) : .header
                } else {
                    state = .extended(type: type, remaining: remaining - take, padding: padding)
                }
            }
        }
    }

    /// Checks the archive did not stop in the middle of an entry.
    func finish() throws {
        switch state {
        case .header where block.isEmpty: return
        case .finished: return
        default: throw TarError.truncated
        }
    }

    private func header(_ h: UnsafeRawBufferPointer) throws {
        if h.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks >= 2 { state = .finished }
            return
        }
        zeroBlocks = 0
        // Checksum: sum of the header with the checksum field read as spaces.
        var sum = 0
        for i in 0..<512 { sum += (i >= 148 && i < 156) ? 32 : Int(h[i]) }
        guard let stored = Self.number(h, 148, 8), stored == Int64(sum) else {
            throw TarError.badHeader("checksum mismatch")
        }
        let type = h[156]
        guard let size = Self.number(h, 124, 12), size >= 0 else { throw TarError.badHeader("bad size") }
        let padding = Int((512 - size % 512) % 512)
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            guard size < 16 << 20 else { throw TarError.badHeader("extended header of \(size) bytes") }
            extended.removeAll(keepingCapacity: true)
            if size == 0 { try finishExtended(type); return }
            state = .extended(type: type, remaining: Int(size), padding: padding)
            return
        case UInt8(ascii: "V"):
            state = size + Int64(padding) > 0 ? .skip(remaining: size + Int64(padding)) : .header
            return
        default: break
        }
        let kind: TarEntry.Kind
        switch type {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symlink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "S"): throw TarError.unsupported("GNU sparse file")
        default: throw TarError.unsupported("type '\(Character(Unicode.Scalar(type)))'")
        }
        var name = Self.string(h, 0, 100)
        let magic = Self.string(h, 257, 6)
        if magic.hasPrefix("ustar") && magic != "ustar " {  // POSIX ustar: prefix field
            let prefix = Self.string(h, 345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        var entry = TarEntry(path: name, kind: kind)
        entry.linkTarget = Self.string(h, 157, 100)
        entry.mode = UInt32(truncatingIfNeeded: Self.number(h, 100, 8) ?? 0o644)
        entry.uid = Int(Self.number(h, 108, 8) ?? 0)
        entry.gid = Int(Self.number(h, 116, 8) ?? 0)
        entry.mtimeSeconds = Int(Self.number(h, 136, 12) ?? 0)
        entry.size = size
        entry.deviceMajor = UInt32(truncatingIfNeeded: Self.number(h, 329, 8) ?? 0)
        entry.deviceMinor = UInt32(truncatingIfNeeded: Self.number(h, 337, 8) ?? 0)
        if let longName { entry.path = longName }
        if let longLink { entry.linkTarget = longLink }
        longName = nil
        longLink = nil
        for (k, v) in globalPax.merging(pax, uniquingKeysWith: { $1 }) {
            switch k {
            case "path": entry.path = v
            case "linkpath": entry.linkTarget = v
            case "size": if let s = Int64(v) { entry.size = s }
            case "uid": if let u = Int(v) { entry.uid = u }
            case "gid": if let g = Int(v) { entry.gid = g }
            case "mtime":
                let parts = v.split(separator: ".", maxSplits: 1)
                entry.mtimeSeconds = Int(parts[0]) ?? entry.mtimeSeconds
                if parts.count == 2 {
                    let frac = String(parts[1].prefix(9))
                    entry.mtimeNanoseconds = (Int(frac) ?? 0) * Self.pow10(9 - frac.count)
                }
            default: break
            }
        }
        entry.xattrs = paxXattrs
        pax = [:]
        paxXattrs = []
        let dataSize = (kind == .regular) ? entry.size : 0
        let skipSize = (kind == .regular) ? 0 : entry.size
        entries += 1
        try sink.begin(entry)
        if dataSize > 0 {
            let pad = Int((512 - dataSize % 512) % 512)
            state = .data(remaining: dataSize, padding: pad)
        } else {
            try sink.end()
            let total = skipSize + Int64((512 - skipSize % 512) % 512)
            state = total > 0 ? .skip(remaining: total) : .header
        }
    }

    private func finishExtended(_ type: UInt8) throws {
        switch type {
        case UInt8(ascii: "L"): longName = Self.cString(extended)
        case UInt8(ascii: "K"): longLink = Self.cString(extended)
        case UInt8(ascii: "x"), UInt8(ascii: "g"):
            // Records: "<length> <key>=<value>\n"
            var i = 0
            let b = extended
            while i < b.count {
                var j = i
                while j < b.count && b[j] != 32 { j += 1 }
                guard j < b.count, let length = Int(String(decoding: b[i..<j], as: UTF8.self)), length > 0,
                    i + length <= b.count
                else { throw TarError.badHeader("malformed PAX record") }
                let record = b[(j + 1)..<(i + length - 1)]
                if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                    let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
                    let valueBytes = Array(record[(eq + 1)...])
                    if key.hasPrefix("SCHILY.xattr.") {
                        if type == UInt8(ascii: "x") { paxXattrs.append((String(key.dropFirst(13)), valueBytes)) }
                    } else if type == UInt8(ascii: "g") {
                        globalPax[key] = String(decoding: valueBytes, as: UTF8.self)
                    } else {
                        pax[key] = String(decoding: valueBytes, as: UTF8.self)
                    }
                }
                i += length
            }
        default: break
        }
        extended.removeAll(keepingCapacity: true)
    }

    private static func pow10(_ n: Int) -> Int { var r = 1; for _ in 0..<max(0, n) { r *= 10 }; return r }

    private static func cString(_ bytes: [UInt8]) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    static func string(_ h: UnsafeRawBufferPointer, _ offset: Int, _ length: Int) -> String {
        var end = offset
        while end < offset + length && h[end] != 0 { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: h[offset..<end]), as: UTF8.self)
    }

    /// Octal (space/NUL terminated) or GNU base-256 (high bit set).
    static func number(_ h: UnsafeRawBufferPointer, _ offset: Int, _ length: Int) -> Int64? {
        if h[offset] & 0x80 != 0 {
            var value: Int64 = Int64(h[offset] & 0x7f)
            for i in (offset + 1)..<(offset + length) { value = value << 8 | Int64(h[i]) }
            return value
        }
        var value: Int64 = 0
        var seen = false
        for i in offset..<(offset + length) {
            let c = h[i]
            if c == 0 || (c == 32 && seen) { break }
            if c == 32 { continue }
            guard c >= 48 && c <= 55 else { return nil }
            value = value * 8 + Int64(c - 48)
            seen = true
        }
        return value
    }
}
