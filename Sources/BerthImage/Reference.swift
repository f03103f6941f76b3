/// An image reference in docker's grammar, normalised the way docker normalises it:
/// `busybox` → `docker.io/library/busybox:latest`, `localhost:5000/a/b@sha256:…`.
///
/// Grammar (distribution/reference): `[domain[:port]/]path[:tag][@digest]`. The first component is a
/// domain when it contains `.` or `:` or is `localhost`; otherwise the reference is on Docker Hub and a
/// single-component path gets `library/`.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    public var registry: String
    /// Repository path, e.g. `library/busybox`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultRegistry = "docker.io"

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses and normalises `text`; a reference with neither tag nor digest gets `latest`.
    public init(parsing text: String) throws(ImageError) {
        func bad(_ why: String) -> ImageError { .invalidReference(text, why) }
        guard !text.isEmpty else { throw bad("empty reference") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard let parsed = Digest(d) else { throw bad("invalid digest \(d)") }
            digest = parsed
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let t = String(rest[rest.index(after: colon)...])
            guard Reference.isValidTag(t) else { throw bad("invalid tag \(t)") }
            tag = t
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, !components.contains(where: \.isEmpty) else { throw bad("empty path component") }
        var registry = Reference.defaultRegistry
        if components.count > 1,
            components[0].contains(".") || components[0].contains(":") || components[0] == "localhost"
        {
            registry = components.removeFirst()
            guard Reference.isValidDomain(registry) else { throw bad("invalid registry \(registry)") }
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Reference.defaultRegistry }
        for c in components where !Reference.isValidComponent(c) {
            throw bad("invalid repository component \"\(c)\" (lowercase letters, digits and separators only)")
        }
        if registry == Reference.defaultRegistry && components.count == 1 { components.insert("library", at: 0) }
        let repository = components.joined(separator: "/")
        guard registry.count + 1 + repository.count <= 255 else { throw bad("name longer than 255 characters") }
        if tag == nil && digest == nil { tag = "latest" }
        self.init(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    /// `registry/repository`, the name without tag or digest.
    public var name: String { "\(registry)/\(repository)" }

    /// The fully qualified reference, e.g. `docker.io/library/busybox:latest`.
    public var description: String {
        var s = name
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.description }
        return s
    }

    /// The short form docker prints (`busybox:latest` for Hub library images).
    public var familiar: String {
        var s = name
        if registry == Reference.defaultRegistry {
            s = repository.hasPrefix("library/") ? String(repository.dropFirst(8)) : repository
        }
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.description }
        return s
    }

    /// What a manifest is fetched by: the digest when pinned, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// The host to connect to (Docker Hub's API lives on registry-1.docker.io).
    public var endpointHost: String { registry == Reference.defaultRegistry ? "registry-1.docker.io" : registry }

    static func isValidTag(_ t: String) -> Bool {
        guard let first = t.utf8.first, t.utf8.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool {
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95
        }
        return word(first) && t.utf8.allSatisfy { word($0) || $0 == 46 || $0 == 45 }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isValidComponent(_ c: String) -> Bool {
        let b = Array(c.utf8)
        guard let first = b.first, let last = b.last else { return false }
        func alnum(_ x: UInt8) -> Bool { (x >= 48 && x <= 57) || (x >= 97 && x <= 122) }
        guard alnum(first), alnum(last) else { return false }
        var i = 0
        while i < b.count {
            if alnum(b[i]) { i += 1; continue }
            var j = i
            while j < b.count && !alnum(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok =
                sep.elementsEqual([46]) || sep.elementsEqual([95]) || sep.elementsEqual([95, 95])
                || sep.allSatisfy { $0 == 45 }
            if !ok { return false }
            i = j
        }
        return true
    }

    static func isValidDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if host.hasPrefix("[") {  // IPv6 literal
            guard let close = host.firstIndex(of: "]") else { return false }
            let after = host[host.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":"), let _ = Int(after.dropFirst()) else { return false }
            return true
        }
        if let colon = host.lastIndex(of: ":") {
            guard let port = Int(host[host.index(after: colon)...]), port > 0, port < 65536 else { return false }
            host = host[..<colon]
        }
        return !host.isEmpty
            && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.utf8.allSatisfy {
                        ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45
                    }
            }
    }
}
