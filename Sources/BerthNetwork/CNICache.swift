#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// The result cache (spec 1.0: "the runtime must cache the result of ADD … and pass it to DEL and
/// CHECK"). One JSON file per attachment, shaped like libcni's (`kind: cni#v1`), holding the
/// configuration list used for ADD so that DEL undoes exactly that.
extension CNI {
    public struct CacheEntry: Sendable, Equatable {
        public var network: NetworkConfigList
        public var containerID: String
        public var netnsPath: String
        public var ifName: String
        public var capabilityArgs: [String: JSON]
        public var result: JSON

        init(network: NetworkConfigList, attachment: Target, capabilityArgs: [String: JSON], result: JSON) {
            self.network = network
            self.containerID = attachment.containerID
            self.netnsPath = attachment.netnsPath
            self.ifName = attachment.ifName
            self.capabilityArgs = capabilityArgs
            self.result = result
        }

        var json: JSON {
            .object([
                "kind": "cni#v1",
                "networkName": .string(network.name),
                "containerId": .string(containerID),
                "netns": .string(netnsPath),
                "ifName": .string(ifName),
                "config": network.json,
                "capabilityArgs": .object(capabilityArgs),
                "result": result,
            ])
        }

        init(json: JSON, source: String) throws(NetworkError) {
            guard json["kind"].string == "cni#v1", case let config = json["config"], config != .null,
                let containerID = json["containerId"].string, let ifName = json["ifName"].string,
                case let result = json["result"], result != .null
            else {
                throw .invalidConfiguration(source: source, reason: "not a cached CNI result")
            }
            network = try NetworkConfigList(parsing: (try? JSONCoding.encode(config)) ?? [], source: source)
            self.containerID = containerID
            self.ifName = ifName
            netnsPath = json["netns"].string ?? ""
            capabilityArgs = json["capabilityArgs"].object ?? [:]
            self.result = result
        }

        /// The parsed result.
        public var parsedResult: CNIResult? { try? CNIResult(json: result) }
    }

    func cachePath(network: String, containerID: String, ifName: String) -> String {
        "\(cacheDirectory)/\(network)-\(containerID)-\(ifName).json"
    }

    /// The cached ADD of `containerID` to `network` on `ifName`, if any.
    public func cachedEntry(network: String, containerID: String, ifName: String) -> CacheEntry? {
        let path = cachePath(network: network, containerID: containerID, ifName: ifName)
        guard let bytes = try? FileSystem.readFile(path),
            let json = try? JSONCoding.decode(JSON.self, from: bytes)
        else { return nil }
        return try? CacheEntry(json: json, source: path)
    }

    /// Every cached attachment of a container (file names cannot be split reliably, since network names
    /// may contain `-`: the entries are read and matched on their content).
    public func cachedEntries(containerID: String) -> [CacheEntry] {
        guard let names = try? FileSystem.listDirectory(cacheDirectory) else { return [] }
        var entries: [CacheEntry] = []
        for name in names where name.hasSuffix(".json") && name.contains("-\(containerID)-") {
            let path = "\(cacheDirectory)/\(name)"
            guard let bytes = try? FileSystem.readFile(path),
                let json = try? JSONCoding.decode(JSON.self, from: bytes),
                let entry = try? CacheEntry(json: json, source: path), entry.containerID == containerID
            else { continue }
            entries.append(entry)
        }
        return entries.sorted { $0.ifName.localizedNumericLess($1.ifName) }
    }

    /// Containers with at least one cached attachment: what an engine compares with its containers after
    /// a crash, to detach the ones that no longer exist.
    public func cachedContainerIDs() -> Set<String> {
        guard let names = try? FileSystem.listDirectory(cacheDirectory) else { return [] }
        var result = Set<String>()
        for name in names where name.hasSuffix(".json") {
            let path = "\(cacheDirectory)/\(name)"
            guard let bytes = try? FileSystem.readFile(path),
                let id = (try? JSONCoding.decode(JSON.self, from: bytes))?["containerId"].string
            else { continue }
            result.insert(id)
        }
        return result
    }

    func writeCache(_ entry: CacheEntry) throws(NetworkError) {
        do {
            try FileSystem.makeDirectories(cacheDirectory, mode: 0o700)
            let bytes = try JSONCoding.encode(entry.json)
            // Not synced, as libcni writes its cache: after a crash the attachment is torn down with
            // the network's current configuration instead.
            try FileSystem.writeAtomically(
                cachePath(
                    network: entry.network.name, containerID: entry.containerID,
                    ifName: entry.ifName), bytes, mode: 0o600, durable: false)
        } catch let error as SystemCallError {
            throw .system(error)
        } catch let error as NetworkError {
            throw error
        } catch {
            throw .invalidConfiguration(source: cacheDirectory, reason: "cannot encode the result cache: \(error)")
        }
    }

    func removeCache(network: String, containerID: String, ifName: String) {
        unlink(cachePath(network: network, containerID: containerID, ifName: ifName))
    }
}

extension String {
    /// `eth2` before `eth10`.
    func localizedNumericLess(_ other: String) -> Bool {
        let a = self.drop { !$0.isNumber }, b = other.drop { !$0.isNumber }
        let prefixA = self.prefix { !$0.isNumber }, prefixB = other.prefix { !$0.isNumber }
        if prefixA == prefixB, let x = Int(a), let y = Int(b) { return x < y }
        return self < other
    }
}
