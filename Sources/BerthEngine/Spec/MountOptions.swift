import BerthOS

extension RunOptionParser {
    /// `-v`/`--volume` (moby's linux ParseMountRaw): `/ctr` (anonymous volume), `name:/ctr` (named volume),
    /// `/host:/ctr` (bind), each with an optional `:MODE` list of `ro`/`rw`, a propagation (`rshared`, …),
    /// `nocopy`, `z`/`Z` and consistency (`cached`, `delegated`, `consistent`; kept in `options`, no
    /// effect here). A relative source starting with `.` is made absolute against `currentDirectory`.
    public static func parseVolume(_ text: String, currentDirectory: String? = nil) throws(EngineError)
        -> ContainerConfiguration.MountRequest
    {
        let option = "--volume"
        let invalidSpec = EngineError.invalidArgument(what: option, reason: "invalid volume specification: '\(text)'")
        let parts = text.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard !parts[0].isEmpty else { throw invalidSpec }
        var source = "", target = "", mode = ""
        switch parts.count {
        case 1: target = parts[0]
        case 2:
            if validVolumeMode(parts[1]) { throw invalidSpec }
            source = parts[0]; target = parts[1]
        case 3: source = parts[0]; target = parts[1]; mode = parts[2]
        default: throw invalidSpec
        }
        guard validVolumeMode(mode) else { throw .invalidArgument(what: option, reason: "invalid mode: \(mode)") }
        if source.hasPrefix(".") { source = absolute(source, currentDirectory) }
        let modes = mode.isEmpty ? [] : mode.split(separator: ",").map(String.init)
        var request = ContainerConfiguration.MountRequest(
            type: source.hasPrefix("/") ? .bind : .volume, source: source,
            target: try validTarget(target, option: option),
            readOnly: modes.contains("ro"))
        request.propagation = modes.first(where: ContainerMounts.propagationModes.contains)
        request.noCopy = modes.contains("nocopy")
        request.options = modes.filter { ["z", "Z", "consistent", "cached", "delegated"].contains($0) }
        if request.type == .volume {
            if request.propagation != nil {
                throw .invalidArgument(
                    what: option,
                    reason: "invalid volume specification: '\(text)': a propagation mode applies to bind mounts only")
            }
            if !source.isEmpty { try validateVolumeName(source, option: option) }
        } else {
            request.source = FileSystem.clean(source)
        }
        return request
    }

    /// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…` (docker's MountOpt, a CSV line).
    /// Keys: type, source/src, target/dst/destination, readonly/ro[=bool], bind-propagation,
    /// bind-recursive=enabled|disabled|writable, bind-nonrecursive, volume-nocopy, volume-driver=local,
    /// tmpfs-size, tmpfs-mode, consistency. A non-recursive bind is recorded as option `bind`.
    public static func parseMount(_ text: String, currentDirectory: String? = nil) throws(EngineError)
        -> ContainerConfiguration.MountRequest
    {
        let option = "--mount"
        func fail(_ reason: String) -> EngineError { .invalidArgument(what: option, reason: reason) }
        var type = "volume", source = "", target = "", readOnly = false, propagation: String?
        var nonRecursive = false, noCopy = false, tmpfsSize: Int64?, tmpfsMode: UInt32?
        var families = Set<String>()
        for field in try csvFields(text, option: option) {
            let key: String, value: String?
            if let equals = field.firstIndex(of: "=") {
                key = field[..<equals].lowercased()
                value = String(field[field.index(after: equals)...])
            } else {
                key = field.lowercased()
                value = nil
            }
            guard let value else {
                switch key {
                case "readonly", "ro": readOnly = true
                case "volume-nocopy": noCopy = true; families.insert("volume")
                case "bind-nonrecursive": nonRecursive = true; families.insert("bind")
                default: throw fail("invalid field '\(field)' must be a key=value pair")
                }
                continue
            }
            func boolean() throws(EngineError) -> Bool {
                guard let parsed = parseBool(value) else { throw fail("invalid value for \(key): \(value)") }
                return parsed
            }
            switch key {
            case "type": type = value.lowercased()
            case "source", "src": source = value.hasPrefix(".") ? absolute(value, currentDirectory) : value
            case "target", "dst", "destination": target = value
            case "readonly", "ro": readOnly = try boolean()
            case "consistency": break
            case "bind-propagation":
                propagation = value.lowercased(); families.insert("bind")
                guard ContainerMounts.propagationModes.contains(propagation!) else {
                    throw fail("invalid propagation mode: \(value)")
                }
            case "bind-nonrecursive": nonRecursive = try boolean(); families.insert("bind")
            case "bind-recursive":
                families.insert("bind")
                switch value {
                case "enabled", "writable": break
                case "disabled": nonRecursive = true
                case "readonly":
                    throw fail("bind-recursive=readonly (forced recursive read-only) is not supported by this engine")
                default:
                    throw fail(
                        "invalid value for \(key): \(value) (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    )
                }
            case "volume-nocopy": noCopy = try boolean(); families.insert("volume")
            case "volume-driver":
                families.insert("volume")
                guard value == "local" else {
                    throw fail("volume driver \"\(value)\" is not available; only \"local\" is")
                }
            case "volume-subpath", "volume-label", "volume-opt", "image-subpath":
                throw fail("\(key) is not supported by this engine")
            case "tmpfs-size":
                families.insert("tmpfs")
                guard let size = try? parseMemory(value, option: option) else {
                    throw fail("invalid value for \(key): \(value)")
                }
                tmpfsSize = size
            case "tmpfs-mode":
                families.insert("tmpfs")
                guard let mode = UInt32(value, radix: 8) else { throw fail("invalid value for \(key): \(value)") }
                tmpfsMode = mode
            default: throw fail("unexpected key '\(key)' in '\(field)'")
            }
        }
        guard let kind = ContainerConfiguration.MountRequest.Kind(rawValue: type) else {
            throw fail("mount type \"\(type)\" is not supported (bind, volume, tmpfs)")
        }
        guard !target.isEmpty else { throw fail("target is required") }
        for family in families where family != type {
            throw fail("cannot mix '\(family)-*' options with mount type '\(type)'")
        }
        var request = ContainerConfiguration.MountRequest(
            type: kind, source: source,
            target: try validTarget(target, option: option),
            readOnly: readOnly)
        switch kind {
        case .bind:
            guard !source.isEmpty else {
                throw fail("invalid mount config for type \"bind\": field Source must not be empty")
            }
            guard source.hasPrefix("/") else {
                throw fail(
                    "invalid mount config for type \"bind\": invalid mount path: '\(source)' mount path must be absolute"
                )
            }
            request.source = FileSystem.clean(source)
            request.propagation = propagation
            if nonRecursive { request.options = ["bind"] }
        case .volume:
            if source.isEmpty && readOnly {
                throw fail(
                    "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes")
            }
            if !source.isEmpty { try validateVolumeName(source, option: option) }
            request.noCopy = noCopy
        case .tmpfs:
            guard source.isEmpty else {
                throw fail("invalid mount config for type \"tmpfs\": field Source must not be specified")
            }
            request.tmpfsSize = tmpfsSize
            request.tmpfsMode = tmpfsMode
        }
        return request
    }

    /// `--tmpfs /run:rw,size=64m,mode=1777` → the destination and its option list (docker keeps the text
    /// after the first `:` as-is; the options are checked as the daemon would merge them).
    public static func parseTmpfs(_ text: String) throws(EngineError) -> (destination: String, options: String) {
        let option = "--tmpfs"
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let destination = try ContainerMounts.cleanDestination(parts[0], option: option)
        let options = parts.count > 1 ? parts[1] : ""
        if !options.isEmpty {
            _ = try mergeTmpfsOptions(options.split(separator: ",").map(String.init), option: option)
        }
        return (destination, options)
    }

    /// moby/sys/mount MergeTmpfsOptions: from the end, keep the first flag of each kind (`rw` vs `ro`,
    /// `exec` vs `noexec`, …; every propagation flag is one kind) and the first of each data key
    /// (size, mode, uid, gid, nr_inodes, nr_blocks, mpol); anything else is an error.
    static func mergeTmpfsOptions(_ options: [String], option: String) throws(EngineError) -> [String] {
        var flagsSeen = Set<Int>(), keysSeen = Set<String>()
        var merged: [String] = []
        for item in options.reversed() where item != "defaults" {
            if let kind = tmpfsFlagKinds[item] {
                if flagsSeen.insert(kind).inserted { merged.insert(item, at: 0) }
                continue
            }
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2,
                ["", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"].contains(String(pair[0]))
            else {
                throw .invalidArgument(what: option, reason: "invalid tmpfs option \"\(item)\"")
            }
            if keysSeen.insert(String(pair[0])).inserted { merged.insert(item, at: 0) }
        }
        return merged
    }

    /// Which mount flag each word sets or clears (words of one kind override each other).
    static let tmpfsFlagKinds: [String: Int] = {
        var kinds: [String: Int] = [:]
        let pairs: [[String]] = [
            ["ro", "rw"], ["suid", "nosuid"], ["dev", "nodev"], ["exec", "noexec"], ["sync", "async"],
            ["dirsync"], ["remount"], ["mand", "nomand"], ["atime", "noatime"],
            ["diratime", "nodiratime"], ["relatime", "norelatime"], ["strictatime", "nostrictatime"],
            [
                "bind", "rbind", "unbindable", "runbindable", "private", "rprivate", "shared",
                "rshared", "slave", "rslave",
            ],
        ]
        for (kind, words) in pairs.enumerated() { for word in words { kinds[word] = kind } }
        return kinds
    }()

    /// A tmpfs size as docker writes it: in g, m or k when it divides evenly.
    static func formatTmpfsSize(_ bytes: Int64) -> String {
        for (suffix, divisor) in [("g", Int64(1) << 30), ("m", Int64(1) << 20), ("k", Int64(1) << 10)]
        where bytes % divisor == 0 {
            return "\(bytes / divisor)\(suffix)"
        }
        return "\(bytes)"
    }

    /// docker's -v MODE list: at most one each of rw/ro, z/Z, a propagation, nocopy, a consistency.
    static func validVolumeMode(_ mode: String) -> Bool {
        if mode.isEmpty { return true }
        let families: [Set<String>] = [
            ["rw", "ro"], ["z", "Z"], ContainerMounts.propagationModes, ["nocopy"],
            ["consistent", "cached", "delegated"],
        ]
        var counts = Array(repeating: 0, count: families.count)
        for word in mode.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard let family = families.firstIndex(where: { $0.contains(word) }) else { return false }
            counts[family] += 1
        }
        return counts.allSatisfy { $0 <= 1 }
    }

    /// The local driver's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
    static func validateVolumeName(_ name: String, option: String) throws(EngineError) {
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.allSatisfy(allowed) else {
            throw .invalidArgument(
                what: option,
                reason:
                    "\"\(name)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )
        }
    }

    static func validTarget(_ target: String, option: String) throws(EngineError) -> String {
        guard !target.isEmpty else { throw .invalidArgument(what: option, reason: "target is required") }
        return try ContainerMounts.cleanDestination(target, option: option)
    }

    static func absolute(_ path: String, _ directory: String?) -> String {
        let base = directory ?? (try? FileSystem.realPath(".")) ?? "/"
        return FileSystem.clean(base + "/" + path)
    }

    /// One CSV record (Go's encoding/csv): fields split at commas; a field in double quotes may hold
    /// commas, and `""` inside it is a quote.
    static func csvFields(_ text: String, option: String) throws(EngineError) -> [String] {
        var fields: [String] = [], current = "", quoted = false, atFieldStart = true
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" {
                        current.append("\""); characters.removeFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "\"" && atFieldStart {
                quoted = true
                atFieldStart = false
            } else if character == "," {
                fields.append(current); current = ""; atFieldStart = true
            } else {
                if character == "\"" { throw .invalidArgument(what: option, reason: "bare \" in non-quoted field") }
                current.append(character); atFieldStart = false
            }
        }
        guard !quoted else { throw .invalidArgument(what: option, reason: "extraneous or missing \" in quoted field") }
        fields.append(current)
        return fields
    }
}
