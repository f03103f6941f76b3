import BerthOS
import BerthImage

/// `POST /auth`: `docker login` asks the daemon to check credentials against a registry; the CLI keeps
/// them itself (config.json) and sends them back with each pull and push (X-Registry-Auth).
extension DockerAPI {
    struct AuthRequest: Decodable {
        var username: String?
        var password: String?
        var serveraddress: String?
        var identitytoken: String?
    }

    struct AuthResponse: Encodable {
        var Status: String
        var IdentityToken: String
    }

    func login(_ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeJSON(AuthRequest.self, request.body)
        if body.identitytoken?.isEmpty == false { throw unsupported("logging in with an identity token") }
        guard let username = body.username, !username.isEmpty else {
            throw DockerAPIError.badRequest("username is required")
        }
        let registry = RegistryClient.loginRegistry(body.serveraddress ?? "")
        let credentials = Credentials(username: username, password: body.password ?? "")
        let client = engine.images.registry
        do {
            try BlockingThread.await { try await client.login(registry: registry, credentials: credentials) }
        } catch let error as ImageError {
            // The CLI shows the daemon's message; a refusal is the 401 it expects.
            if case .authentication(let why) = error { throw DockerAPIError(.unauthorized, why) }
            throw DockerAPIError.from(error)
        }
        response.json(AuthResponse(Status: "Login Succeeded", IdentityToken: ""))
    }
}
