import Crypto
import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// The cluster's own certificate authority and the files `berth server` creates on first start:
///
///     <data-dir>/pki/ca.crt, ca.key            the CA (ECDSA P-256, 10 years)
///     <data-dir>/pki/apiserver.crt, .key       serving cert for localhost, 127.0.0.1 and --tls-san names
///     <data-dir>/pki/admin.crt, admin.key      client cert CN=admin, O=system:masters
///     <data-dir>/pki/apiserver-kubelet-client.crt, .key   the API server's client cert for node agents
///     <data-dir>/pki/kubelet-<node>.crt, .key  a node agent's serving cert (its name and addresses)
///     <data-dir>/pki/sa.key, sa.pub            service-account token signing key (ECDSA P-256)
///     <data-dir>/tokens.csv                    static bearer tokens: token,user,uid,"group1,group2"
///     <data-dir>/admin.kubeconfig              kubectl config using the admin client cert
public struct PKI: Sendable {
    public var caPEM: String
    public var caKeyPEM: String
    public var serverCertPEM: String
    public var serverKeyPEM: String
    public var adminCertPEM: String
    public var adminKeyPEM: String
    /// What the API server presents to node agents (logs, exec, attach): the only client they accept.
    public var kubeletClientCertPEM: String
    public var kubeletClientKeyPEM: String
    /// The common name of ``kubeletClientCertPEM``.
    public static let kubeletClientName = "berth-apiserver-kubelet-client"
    let directory: String
    /// Signs and verifies service-account tokens (`sa.key`).
    public var serviceAccountSigner: ServiceAccountTokenSigner

    /// Loads the PKI from `dir/pki`, creating whatever is missing.
    public static func loadOrCreate(dataDir: String, sans: [String]) throws -> PKI {
        let dir = dataDir + "/pki"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func read(_ f: String) -> String? { try? String(contentsOfFile: dir + "/" + f, encoding: .utf8) }
        func write(_ f: String, _ s: String, secret: Bool) throws {
            let path = dir + "/" + f
            try writeNewFile(path, Data(s.utf8), permissions: secret ? 0o600 : 0o644)
        }
        let caKey: P256.Signing.PrivateKey
        let caCert: Certificate
        if let k = read("ca.key"), let c = read("ca.crt") {
            caKey = try P256.Signing.PrivateKey(pemRepresentation: k)
            caCert = try Certificate(pemEncoded: c)
        } else {
            caKey = P256.Signing.PrivateKey()
            let name = try DistinguishedName { CommonName("berth-ca") }
            caCert = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
                notValidBefore: Date().addingTimeInterval(-3600),
                notValidAfter: Date().addingTimeInterval(86400 * 3650),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: .init(caKey.publicKey))
                }, issuerPrivateKey: .init(caKey))
            try write("ca.key", caKey.pemRepresentation, secret: true)
            try write("ca.crt", try caCert.serializeAsPEM().pemString, secret: false)
        }
        func issue(_ base: String, cn: String, org: String?, server: Bool) throws -> (String, String) {
            try Self.issue(
                directory: dir, base: base, cn: cn, org: org,
                serverNames: server ? ["localhost", "127.0.0.1"] + sans : nil,
                caCert: caCert, caKey: caKey)
        }
        let server = try issue("apiserver", cn: "berth-apiserver", org: nil, server: true)
        let admin = try issue("admin", cn: "admin", org: "system:masters", server: false)
        let kubeletClient = try issue("apiserver-kubelet-client", cn: kubeletClientName, org: nil, server: false)
        let saKeyPEM: String
        if let k = read("sa.key") {
            saKeyPEM = k
        } else {
            let key = P256.Signing.PrivateKey()
            saKeyPEM = key.pemRepresentation
            try write("sa.key", saKeyPEM, secret: true)
            try write("sa.pub", key.publicKey.pemRepresentation, secret: false)
        }
        return PKI(
            caPEM: try caCert.serializeAsPEM().pemString, caKeyPEM: caKey.pemRepresentation,
            serverCertPEM: server.0, serverKeyPEM: server.1, adminCertPEM: admin.0, adminKeyPEM: admin.1,
            kubeletClientCertPEM: kubeletClient.0, kubeletClientKeyPEM: kubeletClient.1, directory: dir,
            serviceAccountSigner: try ServiceAccountTokenSigner(pem: saKeyPEM))
    }

    /// Loads `<base>.crt` and `.key` from `directory`, or issues them from the CA: a server certificate
    /// for `serverNames` (DNS names and IPv4 addresses), else a client certificate.
    static func issue(
        directory: String, base: String, cn: String, org: String?, serverNames: [String]?, caCert: Certificate,
        caKey: P256.Signing.PrivateKey
    ) throws -> (String, String) {
        func read(_ f: String) -> String? { try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) }
        if let c = read(base + ".crt"), let k = read(base + ".key") { return (c, k) }
        let key = P256.Signing.PrivateKey()
        let cert = try sign(
            publicKey: .init(key.publicKey), cn: cn, org: org, serverNames: serverNames, caCert: caCert, caKey: caKey)
        let pair = (try cert.serializeAsPEM().pemString, key.pemRepresentation)
        try writeNewFile(directory + "/" + base + ".crt", Data(pair.0.utf8), permissions: 0o644)
        try writeNewFile(directory + "/" + base + ".key", Data(pair.1.utf8), permissions: 0o600)
        return pair
    }

    /// A certificate for `publicKey` signed by the CA (one year): for `serverNames` (DNS names and IPv4
    /// addresses) a serving certificate, else a client certificate.
    static func sign(
        publicKey: Certificate.PublicKey, cn: String, org: String?, serverNames: [String]?, caCert: Certificate,
        caKey: P256.Signing.PrivateKey
    ) throws -> Certificate {
        let subject = try DistinguishedName {
            if let org { OrganizationName(org) }
            CommonName(cn)
        }
        var names: [GeneralName] = []
        for san in Set(serverNames ?? []) {
            if let ip = ipv4Bytes(san) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ip[...])))
            } else {
                names.append(.dnsName(san))
            }
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86400 * 365),
            issuer: caCert.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([serverNames != nil ? .serverAuth : .clientAuth])
                if serverNames != nil { SubjectAlternativeNames(names) }
            }, issuerPrivateKey: .init(caKey))
    }

    /// What a joining node is given for its key: a client certificate naming it as the node authorizer
    /// expects (CN=system:node:<name>, O=system:nodes) and a serving certificate for its HTTPS API, for
    /// its name and addresses. Neither is kept: the node stores them, and asks again with the same key.
    public func nodeCertificates(node: String, publicKey: Certificate.PublicKey, addresses: [String]) throws -> (
        client: String, serving: String
    ) {
        let caCert = try Certificate(pemEncoded: caPEM)
        let caKey = try P256.Signing.PrivateKey(pemRepresentation: caKeyPEM)
        let client = try Self.sign(
            publicKey: publicKey, cn: "system:node:\(node)", org: "system:nodes", serverNames: nil, caCert: caCert,
            caKey: caKey)
        let serving = try Self.sign(
            publicKey: publicKey, cn: "system:node:\(node)", org: "system:nodes", serverNames: [node] + addresses,
            caCert: caCert, caKey: caKey)
        return (try client.serializeAsPEM().pemString, try serving.serializeAsPEM().pemString)
    }

    /// A node agent's serving certificate (`kubelet-<node>`), issued once for its name and addresses:
    /// what the in-process agent of `berth server` serves its HTTPS port with.
    public func kubeletServingCertificate(node: String, addresses: [String]) throws -> (cert: String, key: String) {
        try Self.issue(
            directory: directory, base: "kubelet-\(node)", cn: node, org: nil,
            serverNames: [node, "localhost", "127.0.0.1"] + addresses, caCert: try Certificate(pemEncoded: caPEM),
            caKey: try P256.Signing.PrivateKey(pemRepresentation: caKeyPEM))
    }

    /// A kubeconfig for `server` (https://host:port); client cert if given, else the bearer token.
    public func kubeconfig(server: String, token: String? = nil, user: String = "admin") -> String {
        func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
        let auth =
            token.map { "    token: \($0)" }
            ?? "    client-certificate-data: \(b64(adminCertPEM))\n    client-key-data: \(b64(adminKeyPEM))"
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: berth
              cluster:
                server: \(server)
                certificate-authority-data: \(b64(caPEM))
            users:
            - name: \(user)
              user:
            \(auth)
            contexts:
            - name: berth
              context:
                cluster: berth
                user: \(user)
                namespace: default
            current-context: berth

            """
    }
}

func ipv4Bytes(_ s: String) -> [UInt8]? {
    let parts = s.split(separator: ".")
    guard parts.count == 4 else { return nil }
    let b = parts.compactMap { UInt8($0) }
    return b.count == 4 ? b : nil
}

/// Who is calling.
public struct UserInfo: Sendable, Equatable {
    public var name: String
    public var groups: [String]
    /// A unique identity across name reuse: a service account's UID, a token file's uid column
    /// (client certificates have none).
    public var uid: String
    /// What an authenticator knows besides (a bound token's pod and credential id), as upstream's
    /// user.Info Extra; authorization webhooks, admission and reviews see it.
    public var extra: [String: [String]]

    public init(name: String, groups: [String], uid: String = "", extra: [String: [String]] = [:]) {
        self.name = name
        self.groups = groups
        self.uid = uid
        self.extra = extra
    }

    /// authentication.k8s.io/v1 UserInfo, as reviews and admission requests carry it (uid and extra
    /// omitted when empty, as Go's omitempty does).
    public var json: JSON {
        var j: JSON = ["username": .string(name), "groups": .array(groups.map { .string($0) })]
        if !uid.isEmpty { j["uid"] = .string(uid) }
        if !extra.isEmpty { j["extra"] = .object(extra.mapValues { .array($0.map { .string($0) }) }) }
        return j
    }
    public var isAdmin: Bool { groups.contains("system:masters") }
    /// For `system:node:<name>` identities, the node name.
    public var nodeName: String? {
        name.hasPrefix("system:node:") ? String(name.dropFirst("system:node:".count)) : nil
    }
}

extension UserInfo {
    /// The identity a TLS client certificate names (CN the user, O its groups), once NIOSSL has
    /// verified it against the cluster CA; nil without one.
    public static func fromClientCertificate(_ channel: any Channel) async -> UserInfo? {
        guard let cert = try? await channel.nioSSL_peerCertificate().get(), let der = try? cert.toDERBytes(),
            let parsed = try? Certificate(derEncoded: der)
        else { return nil }
        var cn = ""
        var orgs: [String] = []
        for rdn in parsed.subject {
            for attr in rdn {
                if attr.type == .RDNAttributeType.commonName { cn = "\(attr.value)" }
                if attr.type == .RDNAttributeType.organizationName { orgs.append("\(attr.value)") }
            }
        }
        return cn.isEmpty ? nil : UserInfo(name: cn, groups: orgs + ["system:authenticated"])
    }
}

/// Static bearer tokens (`tokens.csv`, kube-apiserver's --token-auth-file format).
public struct TokenFile: Sendable {
    public var tokens: [String: UserInfo]
    public static func loadOrCreate(dataDir: String) throws -> (TokenFile, adminToken: String) {
        let path = dataDir + "/tokens.csv"
        if !FileManager.default.fileExists(atPath: path) {
            let token = randomToken()
            try writeNewFile(path, Data("\(token),admin,admin,\"system:masters\"\n".utf8), permissions: 0o600)
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var tokens: [String: UserInfo] = [:]
        var admin = ""
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = splitCSV(String(line))
            guard fields.count >= 2 else { continue }
            let groups = fields.count >= 4 ? fields[3].split(separator: ",").map(String.init) : []
            // token,user,uid,"group1,group2" (kube-apiserver's --token-auth-file).
            tokens[fields[0]] = UserInfo(
                name: fields[1], groups: groups + ["system:authenticated"], uid: fields.count >= 3 ? fields[2] : "")
            if admin.isEmpty && groups.contains("system:masters") { admin = fields[0] }
        }
        return (TokenFile(tokens: tokens), admin)
    }
    static func splitCSV(_ line: String) -> [String] {
        var out: [String] = []; var cur = ""; var quoted = false
        for c in line {
            if c == "\"" {
                quoted.toggle()
            } else if c == "," && !quoted {
                out.append(cur); cur = ""
            } else {
                cur.append(c)
            }
        }
        out.append(cur)
        return out
    }
    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}

/// Writes a file the server needs (key, certificate, token file, kubeconfig) with the given mode, or
/// throws naming it: `FileManager.createFile` only answers false, and a server that carried on without
/// its CA key would mint a new one on the next start.
func writeNewFile(_ path: String, _ contents: Data, permissions: Int) throws {
    guard FileManager.default.createFile(atPath: path, contents: contents, attributes: [.posixPermissions: permissions])
    else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
}
