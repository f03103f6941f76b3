import Crypto
import Foundation

/// Legacy service-account tokens (the Secrets of type kubernetes.io/service-account-token that the
/// token controller fills): ES256 JWTs signed with the server's `pki/sa.key`, carrying upstream's
/// legacy claims, so a pod (or `kubectl --token`) can authenticate as its ServiceAccount.
public struct ServiceAccountTokenSigner: Sendable {
    public static let issuer = "kubernetes/serviceaccount"
    static let claimNamespace = "kubernetes.io/serviceaccount/namespace"
    static let claimSecretName = "kubernetes.io/serviceaccount/secret.name"
    static let claimSAName = "kubernetes.io/serviceaccount/service-account.name"
    static let claimSAUID = "kubernetes.io/serviceaccount/service-account.uid"

    // Raw key bytes (Crypto's key types are not Sendable); keys are rebuilt per use, which is cheap.
    let privateKeyRaw: Data
    let publicKeyRaw: Data
    /// The JWT `kid`: base64url(SHA-256(DER public key)), as kube-apiserver computes it.
    public let keyID: String

    public init(pem: String) throws {
        let key = try P256.Signing.PrivateKey(pemRepresentation: pem)
        privateKeyRaw = key.rawRepresentation
        publicKeyRaw = key.publicKey.rawRepresentation
        keyID = Self.base64url(Data(SHA256.hash(data: key.publicKey.derRepresentation)))
    }

    /// What a valid token says.
    public struct Claims: Sendable, Equatable {
        public var namespace: String
        public var secretName: String
        public var serviceAccountName: String
        public var serviceAccountUID: String
        public init(namespace: String, secretName: String, serviceAccountName: String, serviceAccountUID: String) {
            self.namespace = namespace; self.secretName = secretName
            self.serviceAccountName = serviceAccountName; self.serviceAccountUID = serviceAccountUID
        }
        public var username: String { "system:serviceaccount:\(namespace):\(serviceAccountName)" }
    }

    /// A signed token for `claims`.
    public func sign(_ claims: Claims) throws -> String {
        try signJWT([
            "iss": .string(Self.issuer), "sub": .string(claims.username),
            Self.claimNamespace: .string(claims.namespace), Self.claimSecretName: .string(claims.secretName),
            Self.claimSAName: .string(claims.serviceAccountName), Self.claimSAUID: .string(claims.serviceAccountUID),
        ])
    }

    /// The claims of `token` if it is a legacy service-account token whose signature this key made;
    /// nil otherwise (whether the Secret and ServiceAccount still exist is for the caller to check).
    public func verify(_ token: String) -> Claims? {
        guard let payload = verifiedPayload(token), payload["iss"].string == Self.issuer,
            let ns = payload[Self.claimNamespace].string, let secret = payload[Self.claimSecretName].string,
            let sa = payload[Self.claimSAName].string, let uid = payload[Self.claimSAUID].string,
            payload["sub"].string == "system:serviceaccount:\(ns):\(sa)"
        else { return nil }
        return Claims(namespace: ns, secretName: secret, serviceAccountName: sa, serviceAccountUID: uid)
    }

    /// An ES256 JWT of `payload` with this key's `kid`.
    func signJWT(_ payload: JSON) throws -> String {
        let header: JSON = ["alg": "ES256", "kid": .string(keyID)]
        let input = Self.base64url(Data(header.serialized())) + "." + Self.base64url(Data(payload.serialized()))
        let signature = try P256.Signing.PrivateKey(rawRepresentation: privateKeyRaw).signature(for: Data(input.utf8))
        return input + "." + Self.base64url(signature.rawRepresentation)
    }

    /// The payload of a JWT this key signed (ES256), nil for anything else.
    func verifiedPayload(_ token: String) -> JSON? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let h = Self.unbase64url(parts[0]), let p = Self.unbase64url(parts[1]),
            let s = Self.unbase64url(parts[2]),
            let header = try? JSON.parse(Array(h)), header["alg"].string == "ES256",
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: s),
            let publicKey = try? P256.Signing.PublicKey(rawRepresentation: publicKeyRaw),
            publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)),
            let payload = try? JSON.parse(Array(p))
        else { return nil }
        return payload
    }

    static func base64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
    static func unbase64url(_ s: Substring) -> Data? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t)
    }
}

extension Handler {
    /// Authenticates a legacy service-account token (kube-apiserver's legacy validator): the signature,
    /// then that its Secret still exists and holds this very token, and that the ServiceAccount exists
    /// with the uid the token names and is not being deleted.
    func serviceAccountUser(token: String) async throws -> UserInfo? {
        guard let claims = server.pki.serviceAccountSigner.verify(token) else { return nil }
        guard
            let secretKV = try await store.get(
                Registry.secrets.key(namespace: claims.namespace, name: claims.secretName)),
            let secret = try? decodeStored(secretKV, Registry.secrets),
            secret["metadata"]["deletionTimestamp"].isNull,
            secret["data"]["token"].string.flatMap({ Data(base64Encoded: $0) }) == Data(token.utf8),
            let saKV = try await store.get(
                Registry.serviceAccounts.key(namespace: claims.namespace, name: claims.serviceAccountName)),
            let sa = try? decodeStored(saKV, Registry.serviceAccounts),
            sa["metadata"]["uid"].string == claims.serviceAccountUID, sa["metadata"]["deletionTimestamp"].isNull
        else { return nil }
        return UserInfo(
            name: claims.username,
            groups: ["system:serviceaccounts", "system:serviceaccounts:\(claims.namespace)", "system:authenticated"],
            uid: claims.serviceAccountUID)
    }
}

extension UserInfo {
    /// For `system:serviceaccount:<namespace>:<name>` identities, the namespace and name.
    public var serviceAccount: (namespace: String, name: String)? {
        let prefix = "system:serviceaccount:"
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count).split(separator: ":", maxSplits: 1)
        guard rest.count == 2 else { return nil }
        return (String(rest[0]), String(rest[1]))
    }
}
