import BerthJSON
import BerthOS
#if canImport(Glibc)
import Glibc
#endif

/// Docker's embedded DNS server (127.0.0.11) as a decision: which queries from a container on a
/// user-defined network are answered from the engine's container records, and which go upstream.
///
/// Docker's rules: a running container is found by its name, its network aliases and its short ID
/// (12 hex digits), case-insensitively, only by containers that share a network with it, and with its
/// address on that shared network (the asker's networks are tried in order; the first with a match
/// wins, with every container that matches there). `NAME.NETWORK` asks on that network only. A name
/// the resolver owns has no IPv6 address: AAAA gets NOERROR with no answers rather than going out.
/// PTR for a peer's address answers `NAME.NETWORK`. Everything else is forwarded.
public enum EmbeddedResolver {
    /// The address containers ask (inside their own network namespace) and the resolv.conf line for it.
    public static let address = "127.0.0.11"
    /// Docker's TTL for its own answers.
    public static let ttl: UInt32 = 600

    public enum Outcome: Equatable, Sendable {
        /// Ours: NOERROR with these answers (possibly none).
        case answer([DNSMessage.Answer])
        /// Not ours: ask the upstream servers.
        case forward
    }

    public static func resolve(_ query: DNSMessage.Query, asker: ResolverPeer, peers: [ResolverPeer]) -> Outcome {
        guard query.opcode == 0, query.qclass == DNSMessage.classIN, !query.labels.isEmpty else { return .forward }
        switch query.type {
        case DNSMessage.RecordType.a, DNSMessage.RecordType.aaaa:
            let addresses = lookup(query.labels, asker: asker, peers: peers)
            guard !addresses.isEmpty else { return .forward }
            return .answer(query.type == DNSMessage.RecordType.a ? addresses.map { .a($0) } : [])
        case DNSMessage.RecordType.ptr:
            guard let address = DNSMessage.reverseAddress(query.labels) else { return .forward }
            for endpoint in asker.endpoints {
                for peer in peers where peer.running {
                    if let theirs = peer.endpoint(sharing: endpoint), theirs.address == address {
                        return .answer([.ptr("\(peer.name).\(endpoint.network)")])
                    }
                }
            }
            return .forward
        default:
            return .forward
        }
    }

    /// Addresses of the running containers called `labels` on the first of the asker's networks where
    /// any is.
    static func lookup(_ labels: [String], asker: ResolverPeer, peers: [ResolverPeer]) -> [IPv4Address] {
        var attempts: [(name: String, endpoints: [ResolverPeer.Endpoint])] = [
            (labels.joined(separator: "."), asker.endpoints)
        ]
        // `web.mynet`: web on mynet (only when mynet is one of the asker's networks).
        if labels.count >= 2 {
            let network = labels.last!
            let scoped = asker.endpoints.filter { DNSMessage.lowercasedASCII($0.network.utf8) == network }
            if !scoped.isEmpty { attempts.append((labels.dropLast().joined(separator: "."), scoped)) }
        }
        for attempt in attempts {
            for endpoint in attempt.endpoints {
                var found: [IPv4Address] = []
                for peer in peers where peer.running {
                    guard let theirs = peer.endpoint(sharing: endpoint), peer.answers(to: attempt.name, on: theirs)
                    else { continue }
                    if !found.contains(theirs.address) { found.append(theirs.address) }
                }
                if !found.isEmpty { return found }
            }
        }
        return []
    }
}

/// What the resolver needs of one container, decoded from the engine's record (`container.json`,
/// BerthEngine's ContainerRecord) without depending on the engine or on Foundation: its ID, name, network aliases,
/// status and its network attachments. A record connected to a network later simply shows the new
/// attachment the next time it is read.
public struct ResolverPeer: Sendable, Equatable {
    public struct Endpoint: Sendable, Equatable {
        public var network: String
        public var networkID: String
        public var address: IPv4Address
        /// Lower-case aliases on this network.
        public var aliases: [String]
        public init(network: String, networkID: String, address: IPv4Address, aliases: [String] = []) {
            self.network = network
            self.networkID = networkID
            self.address = address
            self.aliases = aliases.map { DNSMessage.lowercasedASCII($0.utf8) }
        }
    }

    public var id: String
    public var name: String
    public var running: Bool
    public var endpoints: [Endpoint]

    public init(id: String, name: String, running: Bool, endpoints: [Endpoint]) {
        self.id = id
        self.name = name
        self.running = running
        self.endpoints = endpoints
    }

    /// This container's endpoint on the network of `other` (same network ID, or same name when either
    /// record lacks an ID).
    func endpoint(sharing other: Endpoint) -> Endpoint? {
        endpoints.first { mine in
            !mine.networkID.isEmpty && !other.networkID.isEmpty
                ? mine.networkID == other.networkID : mine.network == other.network
        }
    }

    /// Whether `name` (lower-case, no trailing dot) is this container's name, short ID, or an alias on `endpoint`.
    func answers(to name: String, on endpoint: Endpoint) -> Bool {
        if DNSMessage.lowercasedASCII(self.name.utf8) == name { return true }
        if name.utf8.count == 12, id.hasPrefix(name) { return true }
        return endpoint.aliases.contains(name)
    }

    /// Decodes a container record; nil for anything unreadable (a record being written, another version).
    public static func decode(record bytes: [UInt8]) -> ResolverPeer? {
        guard let record = try? JSON.parse(bytes), let id = record["id"].string, let name = record["name"].string else {
            return nil
        }
        let status = record["state"]["status"].string ?? ""
        // Docker's --network-alias belongs to the network the container was started on (--network);
        // an attachment that carries aliases of its own (a later `network connect --alias`) uses those.
        let primary = record["configuration"]["networkMode"].string ?? ""
        let aliases = record["configuration"]["networkAliases"].array?.compactMap(\.string) ?? []
        let endpoints: [Endpoint] = (record["networks"].array ?? []).compactMap { attachment in
            guard let network = attachment["network"].string, let text = attachment["address"].string,
                let address = IPv4Address(text.split(separator: "/").first ?? Substring(text))
            else { return nil }
            return Endpoint(
                network: network, networkID: attachment["networkID"].string ?? "", address: address,
                aliases: attachment["aliases"].array?.compactMap(\.string) ?? (network == primary ? aliases : []))
        }
        return ResolverPeer(
            id: id, name: name, running: status == "running" || status == "paused", endpoints: endpoints)
    }
}

/// The engine's container records as the resolver sees them: `<root>/containers/*/container.json`,
/// re-read on every query (so a container started, stopped or connected a moment ago is seen at once)
/// but decoded again only when a file changed (the engine replaces records by rename, so a new inode or
/// mtime means new contents).
public final class ResolverDirectory {
    public let containers: String
    private var cache: [String: (stamp: Stamp, peer: ResolverPeer?)] = [:]

    struct Stamp: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
    }

    public init(containers: String) { self.containers = containers }

    /// Every readable record.
    public func peers() -> [ResolverPeer] {
        let ids = (try? FileSystem.listSubdirectories(containers)) ?? []
        var seen: [String: (stamp: Stamp, peer: ResolverPeer?)] = [:]
        var result: [ResolverPeer] = []
        for id in ids {
            let path = "\(containers)/\(id)/container.json"
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            let stamp = Stamp(
                inode: UInt64(info.st_ino), size: Int64(info.st_size),
                modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
            var entry = cache[path]
            if entry == nil || entry!.stamp != stamp {
                entry = (stamp, (try? FileSystem.readFile(path)).flatMap(ResolverPeer.decode(record:)))
            }
            seen[path] = entry
            if let peer = entry!.peer { result.append(peer) }
        }
        cache = seen
        return result
    }
}
