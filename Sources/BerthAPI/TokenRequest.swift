import BerthStore
import Crypto
import Foundation
import Hummingbird

/// Bound service-account tokens: what `serviceaccounts/<name>/token` (TokenRequest, `kubectl create
/// token`, the node agent's projected token volumes) issues and the API server then accepts. They carry
/// kube-apiserver's claims — the issuer, audiences, expiry, a unique ID and the `kubernetes.io` claim
/// naming the namespace, the ServiceAccount and the object the token is bound to — and are valid only
/// while the ServiceAccount and that object exist with the UIDs they name.
public struct BoundTokenClaims: Sendable, Equatable {
    /// The issuer and the API server's own audience (kube-apiserver's default `--service-account-issuer`
    /// on k3s and kubeadm clusters).
    public static let issuer = "https://kubernetes.default.svc.cluster.local"

    public var namespace: String
    public var serviceAccountName: String
    public var serviceAccountUID: String
    public var audiences: [String]
    /// Seconds since the epoch.
    public var issuedAt: Int64
    public var expiresAt: Int64
    /// The object the token lives and dies with: `Pod` or `Secret`, its name and UID.
    public var boundKind: String?
    public var boundName: String?
    public var boundUID: String?
    /// For a token bound to a pod on a node: that node (upstream's ServiceAccountTokenPodNodeInfo).
    public var nodeName: String?
    public var nodeUID: String?
    public var id: String

    public var username: String { "system:serviceaccount:\(namespace):\(serviceAccountName)" }

    var payload: JSON {
        var kubernetes: JSON = [
            "namespace": .string(namespace),
            "serviceaccount": ["name": .string(serviceAccountName), "uid": .string(serviceAccountUID)],
        ]
        if let boundKind, let boundName, let boundUID {
            kubernetes[boundKind.lowercased()] = ["name": .string(boundName), "uid": .string(boundUID)]
        }
        if let nodeName {
            kubernetes["node"] = ["name": .string(nodeName)]
            if let nodeUID { kubernetes["node"]["uid"] = .string(nodeUID) }
        }
        return [
            "aud": .array(audiences.map { .string($0) }), "exp": .int(expiresAt), "iat": .int(issuedAt),
            "nbf": .int(issuedAt), "iss": .string(Self.issuer), "jti": .string(id), "sub": .string(username),
            "kubernetes.io": kubernetes,
        ]
    }

    init?(payload: JSON) {
        let kubernetes = payload["kubernetes.io"]
        guard payload["iss"].string == Self.issuer, let namespace = kubernetes["namespace"].string,
            let name = kubernetes["serviceaccount"]["name"].string,
            let uid = kubernetes["serviceaccount"]["uid"].string, let expiresAt = payload["exp"].int,
            payload["sub"].string == "system:serviceaccount:\(namespace):\(name)"
        else { return nil }
        self.namespace = namespace
        serviceAccountName = name
        serviceAccountUID = uid
        // `aud` may be one string or a list (RFC 7519).
        audiences = payload["aud"].array?.compactMap(\.string) ?? payload["aud"].string.map { [$0] } ?? []
        issuedAt = payload["iat"].int ?? 0
        self.expiresAt = expiresAt
        id = payload["jti"].string ?? ""
        for kind in ["Pod", "Secret"] {
            if let name = kubernetes[kind.lowercased()]["name"].string {
                boundKind = kind
                boundName = name
                boundUID = kubernetes[kind.lowercased()]["uid"].string
            }
        }
        nodeName = kubernetes["node"]["name"].string
        nodeUID = kubernetes["node"]["uid"].string
    }

    public init(
        namespace: String, serviceAccountName: String, serviceAccountUID: String, audiences: [String],
        issuedAt: Int64, expiresAt: Int64, boundKind: String? = nil, boundName: String? = nil, boundUID: String? = nil,
        nodeName: String? = nil, nodeUID: String? = nil, id: String = UUID().uuidString.lowercased()
    ) {
        self.nodeName = nodeName
        self.nodeUID = nodeUID
        self.namespace = namespace
        self.serviceAccountName = serviceAccountName
        self.serviceAccountUID = serviceAccountUID
        self.audiences = audiences
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.boundKind = boundKind
        self.boundName = boundName
        self.boundUID = boundUID
        self.id = id
    }
}

extension ServiceAccountTokenSigner {
    public func sign(_ claims: BoundTokenClaims) throws -> String { try signJWT(claims.payload) }

    /// The claims of a bound token this key signed, if it has not expired (a minute's leeway for
    /// clocks, as upstream allows) and is meant for one of `audiences`.
    public func verifyBound(_ token: String, audiences: [String], now: Int64) -> BoundTokenClaims? {
        guard let payload = verifiedPayload(token), let claims = BoundTokenClaims(payload: payload),
            now < claims.expiresAt + 60, claims.issuedAt <= now + 60,
            claims.audiences.contains(where: audiences.contains)
        else { return nil }
        return claims
    }

    /// The key as a JSON Web Key (RFC 7517), for `/openid/v1/jwks`.
    public var jwk: JSON {
        // The raw representation is X ‖ Y, 32 bytes each.
        let raw = publicKeyRaw
        return [
            "use": "sig", "kty": "EC", "kid": .string(keyID), "crv": "P-256", "alg": "ES256",
            "x": .string(Self.base64url(raw.prefix(32))), "y": .string(Self.base64url(raw.suffix(32))),
        ]
    }
}

extension Handler {
    /// The audiences the API server accepts tokens for (kube-apiserver's `--api-audiences`, by default
    /// the issuer).
    static let apiAudiences = [BoundTokenClaims.issuer]

    /// Authenticates a bound token: the signature, expiry and audience (the server's own, or one of
    /// `audiences` a TokenReview asks about), then that the ServiceAccount and the bound object still
    /// exist with the UIDs the token names and are not being deleted.
    func boundServiceAccountUser(token: String, audiences: [String] = apiAudiences) async throws -> UserInfo? {
        let now = Int64(Date().timeIntervalSince1970)
        guard
            let claims = server.pki.serviceAccountSigner.verifyBound(token, audiences: audiences, now: now),
            let saKV = try await store.get(
                Registry.serviceAccounts.key(namespace: claims.namespace, name: claims.serviceAccountName)),
            let sa = try? decodeStored(saKV, Registry.serviceAccounts),
            sa["metadata"]["uid"].string == claims.serviceAccountUID, sa["metadata"]["deletionTimestamp"].isNull
        else { return nil }
        if let kind = claims.boundKind, let name = claims.boundName {
            let resource = kind == "Pod" ? Registry.pods : Registry.secrets
            guard let kv = try await store.get(resource.key(namespace: claims.namespace, name: name)),
                let object = try? decodeStored(kv, resource), object["metadata"]["uid"].string == claims.boundUID,
                object["metadata"]["deletionTimestamp"].isNull
            else { return nil }
        }
        // Upstream's ServiceAccountInfo.UserInfo: the account's UID; the pod a token is bound to and the
        // token's id (JTI) as extra.
        var extra: [String: [String]] = [:]
        if claims.boundKind == "Pod", let name = claims.boundName, let uid = claims.boundUID {
            extra[Self.podNameExtra] = [name]
            extra[Self.podUIDExtra] = [uid]
        }
        if !claims.id.isEmpty { extra[Self.credentialIDExtra] = ["JTI=\(claims.id)"] }
        if let node = claims.nodeName {
            extra[Self.nodeNameExtra] = [node]
            if let uid = claims.nodeUID { extra[Self.nodeUIDExtra] = [uid] }
        }
        return UserInfo(
            name: claims.username,
            groups: ["system:serviceaccounts", "system:serviceaccounts:\(claims.namespace)", "system:authenticated"],
            uid: claims.serviceAccountUID, extra: extra)
    }

    static let podNameExtra = "authentication.kubernetes.io/pod-name"
    static let podUIDExtra = "authentication.kubernetes.io/pod-uid"
    static let credentialIDExtra = "authentication.kubernetes.io/credential-id"
    static let nodeNameExtra = "authentication.kubernetes.io/node-name"
    static let nodeUIDExtra = "authentication.kubernetes.io/node-uid"

    /// serviceaccounts/<name>/token: a bound token for the ServiceAccount, as kube-apiserver's
    /// TokenRequest REST storage issues it (expiry at least ten minutes, an hour by default; the API
    /// server's audience when none is asked; bound to a Pod or Secret that must exist, its UID checked).
    func issueToken(namespace: String, serviceAccount: String, request body: JSON, user: UserInfo) async throws
        -> JSON
    {
        if let kind = body["kind"].string, !kind.isEmpty, kind != "TokenRequest" {
            throw APIError.badRequest("the body of a token request must be a TokenRequest, not \(kind)")
        }
        func invalid(_ field: String, _ message: String) -> APIError {
            APIError(
                code: 422, reason: "Invalid",
                message: "TokenRequest.authentication.k8s.io \"\(serviceAccount)\" is invalid: \(field): \(message)",
                details: [
                    "name": .string(serviceAccount), "group": "authentication.k8s.io", "kind": "TokenRequest",
                    "causes": [["reason": "FieldValueInvalid", "message": .string(message), "field": .string(field)]],
                ])
        }
        let expiration = body["spec"]["expirationSeconds"].int ?? 3600
        if expiration < 600 {
            throw invalid(
                "spec.expirationSeconds",
                "Invalid value: \(expiration): may not specify a duration less than 10 minutes")
        }
        if expiration > 1 << 32 {
            throw invalid(
                "spec.expirationSeconds",
                "Invalid value: \(expiration): may not specify a duration larger than 2^32 seconds")
        }
        var audiences = (body["spec"]["audiences"].array ?? []).compactMap(\.string)
        if audiences.isEmpty { audiences = Self.apiAudiences }
        guard let saKV = try await store.get(Registry.serviceAccounts.key(namespace: namespace, name: serviceAccount))
        else { throw APIError.notFound(Registry.serviceAccounts, serviceAccount) }
        let sa = try decodeStored(saKV, Registry.serviceAccounts)

        var bound: (kind: String, name: String, uid: String)?
        var node: (name: String, uid: String?)?
        let reference = body["spec"]["boundObjectRef"]
        if let kind = reference["kind"].string, !kind.isEmpty {
            guard kind == "Pod" || kind == "Secret" else {
                throw invalid(
                    "spec.boundObjectRef.kind", "Unsupported value: \"\(kind)\": supported values: \"Pod\", \"Secret\"")
            }
            let resource = kind == "Pod" ? Registry.pods : Registry.secrets
            let name = reference["name"].string ?? ""
            guard let kv = try await store.get(resource.key(namespace: namespace, name: name)) else {
                throw APIError.notFound(resource, name)
            }
            let object = try decodeStored(kv, resource)
            let uid = object["metadata"]["uid"].string ?? ""
            if let asked = reference["uid"].string, !asked.isEmpty, asked != uid {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message:
                        "the UID in the bound object reference (\(asked)) does not match the UID in record. The object might have been deleted and then recreated"
                )
            }
            // A node asks only for the pods bound to it (NodeRestriction).
            if let node = user.nodeName, kind != "Pod" || object["spec"]["nodeName"].string != node {
                throw APIError.forbidden(
                    "serviceaccounts \"\(serviceAccount)\" is forbidden: node \"\(node)\" can only request tokens bound to pods scheduled to it"
                )
            }
            bound = (kind, name, uid)
            // A pod's token names the pod's node too, with its UID when the Node exists.
            if kind == "Pod", let nodeName = object["spec"]["nodeName"].string, !nodeName.isEmpty {
                let nodeObject = try await storedObject(Registry.nodes, namespace: nil, name: nodeName)
                node = (nodeName, nodeObject?["metadata"]["uid"].string)
            }
        } else if let node = user.nodeName {
            throw APIError.forbidden(
                "serviceaccounts \"\(serviceAccount)\" is forbidden: node \"\(node)\" can only request tokens bound to pods"
            )
        }

        let now = Int64(Date().timeIntervalSince1970)
        let claims = BoundTokenClaims(
            namespace: namespace, serviceAccountName: serviceAccount,
            serviceAccountUID: sa["metadata"]["uid"].string ?? "", audiences: audiences, issuedAt: now,
            expiresAt: now + expiration, boundKind: bound?.kind, boundName: bound?.name, boundUID: bound?.uid,
            nodeName: node?.name, nodeUID: node?.uid)
        let token = try server.pki.serviceAccountSigner.sign(claims)
        var spec: JSON = ["audiences": .array(audiences.map { .string($0) }), "expirationSeconds": .int(expiration)]
        if let bound {
            spec["boundObjectRef"] = [
                "kind": .string(bound.kind), "apiVersion": "v1", "name": .string(bound.name), "uid": .string(bound.uid),
            ]
        }
        return [
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": [
                "name": .string(serviceAccount), "namespace": .string(namespace),
                "creationTimestamp": .string(Handler.now()),
            ],
            "spec": spec,
            "status": [
                "token": .string(token),
                "expirationTimestamp": .string(APITime.format(Int(now + expiration), micros: nil)),
            ],
        ]
    }

    /// The service-account issuer discovery documents (`/.well-known/openid-configuration`,
    /// `/openid/v1/jwks`), as kube-apiserver serves them for other systems to verify its tokens.
    func serviceAccountIssuerDocument(_ path: String) -> Response? {
        switch path {
        case "/.well-known/openid-configuration":
            return Self.json([
                "issuer": .string(BoundTokenClaims.issuer),
                "jwks_uri": .string(BoundTokenClaims.issuer + "/openid/v1/jwks"),
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            ])
        case "/openid/v1/jwks":
            return Self.json(
                ["keys": [server.pki.serviceAccountSigner.jwk]], contentType: "application/jwk-set+json")
        default:
            return nil
        }
    }
}
