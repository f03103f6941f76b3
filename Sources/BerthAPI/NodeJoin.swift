import BerthStore
import Crypto
import Foundation
import Hummingbird
import NIOCore
import X509

/// Joining a node, the two unauthenticated endpoints a machine with the join token (and nothing else)
/// uses to become a node:
///
///     GET  /cacerts          the cluster CA (PEM), which the agent checks against the token's hash
///     POST /berth/v1/join    {"nodeName", "csr" (PEM), "addresses"} with the token as the bearer
///                            → {"clientCertificate", "servingCertificate", "ca", "clusterCIDR"}
///
/// The client certificate names the node as the node authorizer expects (system:node:<name>, group
/// system:nodes), the serving certificate its HTTPS API. The CSR only proves that the caller holds the
/// key; its subject is ignored. A name belongs to the key that joined it while its Node exists, so a
/// second machine with the same host name (or a holder of the token) cannot take over a live node's
/// identity; the same key joining again (a lost certificate) is fine, and once the Node is deleted the
/// name is free.
extension Handler {
    /// Where a joined name's key is recorded, in the store (so every API server of the cluster sees it).
    static let joinRecordPrefix = "/berth/node-joins/"

    /// What a join request carries.
    struct JoinRequest {
        var nodeName: String
        var csr: CertificateSigningRequest
        var addresses: [String]
        /// SHA-256 (hex) of the CSR's SubjectPublicKeyInfo: the key the name is recorded with.
        var fingerprint: String
    }

    /// The answer to an unauthenticated request, or nil when the path is none of the join endpoints.
    func unauthenticated(_ req: Request, _ ctx: APIContext) async -> Response? {
        switch req.uri.path {
        case JoinPaths.caCerts where req.method == .get || req.method == .head:
            return Response(
                status: .ok, headers: [.contentType: "application/x-pem-file"],
                body: .init(byteBuffer: ByteBuffer(string: server.pki.caPEM)))
        case JoinPaths.join:
            let source = ctx.channel.remoteAddress?.ipAddress ?? "unknown"
            var node: String?
            do {
                guard req.method == .post else { throw APIError.methodNotAllowed("") }
                var buffer: ByteBuffer
                do { buffer = try await req.body.collect(upTo: 64 << 10) } catch { throw APIError.tooLarge }
                let body = buffer.readBytes(length: buffer.readableBytes) ?? []
                let parsed = try? JSON.parse(body)
                node = parsed?["nodeName"].string
                try checkJoinToken(authorization: req.headers[.authorization], body: parsed ?? .null)
                let request = try Self.joinRequest(parsed ?? .null)
                try await claimNodeName(request)
                let (client, serving) = try server.pki.nodeCertificates(
                    node: request.nodeName, publicKey: request.csr.publicKey, addresses: request.addresses)
                server.logger.notice(
                    "node joined", metadata: ["who": "\(source)", "node": "\(request.nodeName)"])
                var answer: JSON = [
                    "clientCertificate": .string(client), "servingCertificate": .string(serving),
                    "ca": .string(server.pki.caPEM),
                ]
                // The pod range, so the node makes its pod network for the cluster's (k3s's agents
                // learn it from their server the same way).
                if let cidr = server.config.clusterCIDR { answer["clusterCIDR"] = .string(cidr) }
                return Self.json(answer)
            } catch {
                let api = (error as? APIError) ?? APIError.internalError("\(error)")
                server.audit.refused(
                    .init(
                        verb: "create", requestURI: req.uri.description, sourceIP: source, user: nil, code: api.code,
                        reason: api.message, node: node))
                return Self.json(api.status, status: api.code)
            }
        default:
            return nil
        }
    }

    /// The token as a bearer (or the body's "token"), compared with the server's in constant time.
    func checkJoinToken(authorization: String?, body: JSON) throws {
        var presented = body["token"].string
        if let authorization, authorization.hasPrefix("Bearer ") { presented = String(authorization.dropFirst(7)) }
        guard let presented, !presented.isEmpty else {
            throw APIError(code: 401, reason: "Unauthorized", message: "a join needs the cluster's join token")
        }
        guard server.joinToken.accepts(presented) else {
            throw APIError(
                code: 401, reason: "Unauthorized",
                message: "the join token is not this cluster's (see <data-dir>/token on the server)")
        }
    }

    /// The request's fields, checked: a node name, a CSR whose signature its key made, IPv4 addresses.
    static func joinRequest(_ body: JSON) throws -> JoinRequest {
        guard body.object != nil else { throw APIError.badRequest("a join request is a JSON object") }
        let name = body["nodeName"].string ?? ""
        guard Validation.isDNS1123Subdomain(name) else {
            throw APIError.badRequest("nodeName \"\(name)\" is not a valid node name: \(Validation.nameRegexText)")
        }
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: body["csr"].string ?? "") } catch {
            throw APIError.badRequest("csr is not a PEM certificate signing request: \(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw APIError.badRequest("the csr's signature is not its key's")
        }
        let addresses = (body["addresses"].array ?? []).compactMap(\.string)
        for address in addresses where FieldChecks.ipAddress(address) == nil {
            throw APIError.badRequest("address \"\(address)\" is not an IPv4 address")
        }
        let fingerprint = SHA256.hash(data: Array(csr.publicKey.subjectPublicKeyInfoBytes))
            .map { String(format: "%02x", $0) }.joined()
        return JoinRequest(nodeName: name, csr: csr, addresses: addresses, fingerprint: fingerprint)
    }

    /// Records the name as this key's, unless another key holds it and its Node still exists.
    func claimNodeName(_ request: JoinRequest) async throws {
        let key = Self.joinRecordPrefix + request.nodeName
        let record: JSON = [
            "nodeName": .string(request.nodeName), "publicKeySHA256": .string(request.fingerprint),
            "joinedAt": .string(Self.now()),
        ]
        guard let existing = try await store.get(key) else {
            do { _ = try await store.create(key, value: record.serialized()) } catch StoreError.alreadyExists(_) {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message: "node \"\(request.nodeName)\" is joining from elsewhere at this moment; try again")
            }
            return
        }
        let held = (try? JSON.parse(existing.value))?["publicKeySHA256"].string
        if held == request.fingerprint { return }
        let nodes = Registry.find(group: "", version: "v1", plural: "nodes")!
        if try await store.get(nodes.key(namespace: nil, name: request.nodeName)) != nil {
            throw APIError.forbidden(
                "node \"\(request.nodeName)\" has already joined with another key; delete the Node to join it again")
        }
        // The Node is gone: whoever joined the name before no longer holds it.
        do {
            _ = try await store.update(key, value: record.serialized(), expectedRevision: existing.modRevision)
        } catch StoreError.conflict(_, _) {
            throw APIError(
                code: 409, reason: "Conflict",
                message: "node \"\(request.nodeName)\" is joining from elsewhere at this moment; try again")
        }
    }
}
