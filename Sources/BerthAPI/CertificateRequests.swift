import Crypto
import Foundation
import SwiftASN1
import X509

/// A PKCS#10 certificate request as the certificates API reads `spec.request` (upstream's
/// `certificates.ParseCSR` plus `CheckSignature`): the first PEM block must be a CERTIFICATE REQUEST whose
/// DER parses and whose signature its own public key verifies. Parsing never traps: anything a client
/// sends ends as a ``CertificateRequestError``.
public struct CertificateRequest: Sendable {
    public let request: X509.CertificateSigningRequest
    /// Subject common name (the last one, as Go keeps it) and organizations, in order.
    public let commonName: String
    public let organizations: [String]
    /// The subjectAltNames the request asks for (its extensionRequest attribute).
    public let dnsNames: [String]
    public let ipAddresses: [[UInt8]]
    public let emailAddresses: [String]
    public let uris: [String]

    public static let pemType = "CERTIFICATE REQUEST"

    public init(pem: [UInt8]) throws(CertificateRequestError) {
        guard let block = PEMBlock.first(in: pem), block.type == Self.pemType else { throw .notACertificateRequest }
        let parsed: X509.CertificateSigningRequest
        do { parsed = try X509.CertificateSigningRequest(derEncoded: block.der) } catch {
            throw .malformed("\(error)")
        }
        guard parsed.publicKey.isValidSignature(parsed.signature, for: parsed) else {
            throw .badSignature(parsed.publicKey)
        }
        request = parsed
        var cn = ""
        var orgs: [String] = []
        for rdn in parsed.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { cn = "\(attribute.value)" }
                if attribute.type == .RDNAttributeType.organizationName { orgs.append("\(attribute.value)") }
            }
        }
        commonName = cn
        organizations = orgs
        var dns: [String] = [], ips: [[UInt8]] = [], emails: [String] = [], uris: [String] = []
        do {
            let requested = try parsed.attributes.extensionRequest?.extensions.subjectAlternativeNames
            for name in requested.map(Array.init) ?? [] {
                switch name {
                case .dnsName(let n): dns.append(n)
                case .ipAddress(let bytes): ips.append(Array(bytes.bytes))
                case .rfc822Name(let n): emails.append(n)
                case .uniformResourceIdentifier(let n): uris.append(n)
                default: break
                }
            }
        } catch {
            throw .malformed("\(error)")
        }
        (dnsNames, ipAddresses, emailAddresses, self.uris) = (dns, ips, emails, uris)
    }
}

/// Why `spec.request` is not a usable certificate request, in upstream's words where Go's are knowable.
public enum CertificateRequestError: Error, CustomStringConvertible, Equatable {
    case notACertificateRequest
    case malformed(String)
    case badSignature(Certificate.PublicKey)

    public var description: String {
        switch self {
        case .notACertificateRequest: "PEM block type must be CERTIFICATE REQUEST"
        case .malformed(let why): "x509: malformed certificate request: \(why)"
        case .badSignature(let key):
            // crypto/x509's CheckSignature failures per key type.
            if P256.Signing.PublicKey(key) != nil || P384.Signing.PublicKey(key) != nil
                || P521.Signing.PublicKey(key) != nil
            {
                "x509: ECDSA verification failure"
            } else if Curve25519.Signing.PublicKey(key) != nil {
                "x509: Ed25519 verification failure"
            } else {
                "crypto/rsa: verification error"
            }
        }
    }
}

/// One PEM block as Go's `pem.Decode` finds it: a `-----BEGIN TYPE-----` line with its matching END line,
/// text before it skipped, `Key: value` header lines noted, the body base64 without spaces.
struct PEMBlock {
    var type: String
    var der: [UInt8]
    var hasHeaders: Bool

    static func first(in bytes: [UInt8]) -> PEMBlock? { all(in: bytes, limit: 1).first }

    /// The blocks one after another, as repeated `pem.Decode` calls read them (stopping at the first
    /// stretch that holds no further block).
    static func all(in bytes: [UInt8], limit: Int = .max) -> [PEMBlock] {
        let text = String(decoding: bytes, as: UTF8.self)
        var rest = text[...]
        var blocks: [PEMBlock] = []
        while blocks.count < limit, let begin = rest.range(of: "-----BEGIN ") {
            let afterBegin = rest[begin.upperBound...]
            guard let close = afterBegin.range(of: "-----") else { break }
            let type = String(afterBegin[..<close.lowerBound])
            let body = afterBegin[close.upperBound...]
            guard !type.contains(where: \.isNewline), let end = body.range(of: "-----END \(type)-----") else {
                rest = afterBegin
                continue
            }
            let lines = body[..<end.lowerBound].split(whereSeparator: \.isNewline)
            let headers = lines.contains { $0.contains(":") }
            let base64 = lines.filter { !$0.contains(":") }.joined().filter { !$0.isWhitespace }
            rest = body[end.upperBound...]
            if let der = Data(base64Encoded: base64) {
                blocks.append(PEMBlock(type: type, der: Array(der), hasHeaders: headers))
            }
        }
        return blocks
    }
}

/// What the built-in signers and the kubelet client approver require of a request beyond parsing
/// (upstream pkg/apis/certificates/helpers.go), each check with upstream's message.
public enum KubeletCertificateProfile {
    public static let nodeUserPrefix = "system:node:"
    public static let nodesGroup = "system:nodes"
    static let clientUsages: Set<String> = ["client auth", "digital signature", "key encipherment"]
    static let clientUsagesNoRSA: Set<String> = ["client auth", "digital signature"]
    static let servingUsages: Set<String> = ["digital signature", "key encipherment", "server auth"]
    static let servingUsagesNoRSA: Set<String> = ["digital signature", "server auth"]

    /// nil when `request` is a kubelet's client certificate request: CN system:node:NAME, O system:nodes
    /// alone, no subjectAltNames, the client usages (key encipherment optional).
    public static func clientProblem(_ request: CertificateRequest, usages: [String]) -> String? {
        if request.organizations != [nodesGroup] { return "subject organization is not system:nodes" }
        if !request.dnsNames.isEmpty { return "DNS subjectAltNames are not allowed" }
        if !request.emailAddresses.isEmpty { return "Email subjectAltNames are not allowed" }
        if !request.ipAddresses.isEmpty { return "IP subjectAltNames are not allowed" }
        if !request.uris.isEmpty { return "URI subjectAltNames are not allowed" }
        if !request.commonName.hasPrefix(nodeUserPrefix) {
            return "subject common name does not begin with system:node:"
        }
        let set = Set(usages)
        if set != clientUsages && set != clientUsagesNoRSA { return "usages did not match \(goList(clientUsages))" }
        return nil
    }

    /// nil when `request` is a kubelet's serving certificate request: O system:nodes alone, at least one
    /// DNS or IP subjectAltName and no others, the serving usages, CN system:node:NAME.
    public static func servingProblem(_ request: CertificateRequest, usages: [String]) -> String? {
        if request.organizations != [nodesGroup] { return "subject organization is not system:nodes" }
        if request.dnsNames.isEmpty && request.ipAddresses.isEmpty { return "DNS or IP subjectAltName is required" }
        if !request.emailAddresses.isEmpty { return "Email subjectAltNames are not allowed" }
        if !request.uris.isEmpty { return "URI subjectAltNames are not allowed" }
        let set = Set(usages)
        if set != servingUsages && set != servingUsagesNoRSA { return "usages did not match \(goList(servingUsages))" }
        if !request.commonName.hasPrefix(nodeUserPrefix) {
            return "subject common name does not begin with system:node:"
        }
        return nil
    }

    /// nil when the usages suit a kube-apiserver client certificate: client auth, plus digital signature
    /// and key encipherment at most.
    public static func apiServerClientProblem(usages: [String]) -> String? {
        for usage in usages where !clientUsages.contains(usage) {
            return "invalid usage for client certificate: \(usage)"
        }
        return usages.contains("client auth") ? nil : "missing required usage for client certificate: client auth"
    }

    /// A Go string set as `%v` prints its sorted List().
    static func goList(_ set: Set<String>) -> String { "[" + set.sorted().joined(separator: " ") + "]" }
}

/// What the CSR cleaner reads from an issued certificate.
public enum IssuedCertificate {
    /// When the certificates of a PEM bundle stop being valid (upstream's cleaner: any of them); nil when
    /// none parses.
    public static func notAfter(_ pem: [UInt8]) -> Date? {
        PEMBlock.all(in: pem).filter { $0.type == "CERTIFICATE" }
            .compactMap { try? Certificate(derEncoded: $0.der).notValidAfter }.min()
    }
}
