import AsyncHTTPClient
import NIOHTTP1

extension RegistryClient {
    /// The registry host a login's server address names, as docker normalises it: `https://index.docker.io/v1/`
    /// (the CLI's default) and `registry-1.docker.io` are Docker Hub; a scheme and a path are dropped.
    public static func loginRegistry(_ serverAddress: String) -> String {
        var host = serverAddress
        for prefix in ["https://", "http://"] where host.hasPrefix(prefix) {
            host = String(host.dropFirst(prefix.count))
        }
        if let slash = host.firstIndex(of: "/") { host = String(host[..<slash]) }
        if host.isEmpty || host == "index.docker.io" || host == "registry-1.docker.io" {
            return Reference.defaultRegistry
        }
        return host
    }

    /// Checks `credentials` against `registry` as `docker login` does: `GET /v2/`, and on its challenge
    /// Basic with the credentials, or a Bearer token asked of the realm with them, then `/v2/` again with
    /// what that gave. Throws ``ImageError/authentication(_:)`` when the registry refuses them.
    public func login(registry: String, credentials: Credentials) async throws(ImageError) {
        let host = registry == Reference.defaultRegistry ? "registry-1.docker.io" : registry
        let url = "\(options.isInsecure(registry) ? "http" : "https")://\(host)/v2/"
        let first = try await probe(url, authorization: nil)
        if first.status == .ok { return }
        guard first.status == .unauthorized, let header = first.challenge, let challenge = AuthChallenge.parse(header)
        else {
            throw .registry(status: Int(first.status.code), url: url, message: "unexpected answer to a login")
        }
        let authorization: String
        do {
            authorization = try await authorize(challenge, registry: registry, scope: nil, credentials: credentials)
        } catch .authentication(let why) {
            throw .authentication("login attempt to \(url) failed: \(why)")
        }
        let second = try await probe(url, authorization: authorization)
        guard second.status == .ok else {
            throw .authentication(
                "login attempt to \(url) failed with status: \(second.status.code) \(second.status.reasonPhrase)")
        }
    }

    private func probe(_ url: String, authorization: String?) async throws(ImageError) -> (
        status: HTTPResponseStatus, challenge: String?
    ) {
        var request = HTTPClientRequest(url: url)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        do {
            let response = try await http.execute(request, timeout: .seconds(30), logger: logger)
            _ = try? await response.body.collect(upTo: 1 << 20)
            return (response.status, response.headers.first(name: "WWW-Authenticate"))
        } catch {
            throw .transport("GET \(url)", cause: describe(error))
        }
    }
}
