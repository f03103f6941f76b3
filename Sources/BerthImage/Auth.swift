#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials

/// A user name and password (or identity token) for one registry.
public struct Credentials: Sendable, Hashable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    var basicHeader: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// Credentials read from a docker-style `config.json` (`{"auths": {"host": {"auth": base64(user:pass)}}}`).
public struct CredentialStore: Sendable {
    public var entries: [String: Credentials]

    public init(entries: [String: Credentials] = [:]) { self.entries = entries }

    /// `$BERTH_AUTH_CONFIG`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; empty when absent.
    public static func load(path: String? = nil) -> CredentialStore {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        let candidates = [
            path, env("BERTH_AUTH_CONFIG"), env("DOCKER_CONFIG").map { $0 + "/config.json" },
            env("HOME").map { $0 + "/.docker/config.json" },
        ].compactMap { $0 }
        for candidate in candidates {
            if let bytes = try? FileSystem.readFile(candidate), let store = try? parse(bytes) { return store }
        }
        return CredentialStore()
    }

    public static func parse(_ bytes: [UInt8]) throws -> CredentialStore {
        struct File: Decodable {
            struct Entry: Decodable {
                var auth: String?; var username: String?; var password: String?; var identitytoken: String?
            }
            var auths: [String: Entry]?
        }
        let file = try ImageCoding.decode(File.self, bytes)
        var entries: [String: Credentials] = [:]
        for (key, entry) in file.auths ?? [:] {
            var host = key
            for prefix in ["https://", "http://"] where host.hasPrefix(prefix) {
                host = String(host.dropFirst(prefix.count))
            }
            if let slash = host.firstIndex(of: "/") { host = String(host[..<slash]) }
            if host == "index.docker.io" || host == "registry-1.docker.io" { host = Reference.defaultRegistry }
            if let auth = entry.auth, let data = Data(base64Encoded: auth) {
                let text = String(decoding: data, as: UTF8.self)
                if let colon = text.firstIndex(of: ":") {
                    entries[host] = Credentials(
                        username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
                }
            } else if let u = entry.username, let p = entry.password {
                entries[host] = Credentials(username: u, password: p)
            }
        }
        return CredentialStore(entries: entries)
    }

    public func credentials(for registry: String) -> Credentials? { entries[registry] }
}

/// A parsed `WWW-Authenticate` challenge: scheme and parameters (realm, service, scope …).
struct AuthChallenge: Equatable {
    var scheme: String
    var parameters: [String: String]

    /// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"`.
    static func parse(_ header: String) -> AuthChallenge? {
        let trimmed = header.drop(while: { $0 == " " })
        guard let space = trimmed.firstIndex(of: " ") else {
            return trimmed.isEmpty ? nil : AuthChallenge(scheme: trimmed.lowercased(), parameters: [:])
        }
        let scheme = trimmed[..<space].lowercased()
        var parameters: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var end = rest.startIndex
                while end < rest.endIndex {
                    let c = rest[end]
                    if escaped {
                        value.append(c); escaped = false
                    } else if c == "\\" {
                        escaped = true
                    } else if c == "\"" {
                        break
                    } else {
                        value.append(c)
                    }
                    end = rest.index(after: end)
                }
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end]).trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
        return AuthChallenge(scheme: scheme, parameters: parameters)
    }
}
