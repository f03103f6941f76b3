@preconcurrency import Crypto
import Foundation
import SwiftASN1
import X509

/// The cluster CA as the CSR signing controller uses it (upstream's `authority.CertificateAuthority` with
/// its `PermissiveSigningPolicy`): the request's subject and subjectAltNames are kept, every extension it
/// asked for is replaced by the usages the CSR object names, the certificate is never a CA, and its
/// lifetime is the signer's choice, backdated five minutes against clock skew.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey
    /// How far notBefore lies before the moment of signing (clock skew between machines).
    public static let backdate: TimeInterval = 5 * 60
    /// Certificates shorter-lived than this keep their whole requested lifetime after the backdate.
    public static let shortLived: TimeInterval = 8 * 3600

    public init(certificatePEM: String, keyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
    }

    /// Why a certificate was not issued.
    public enum SigningError: Error, CustomStringConvertible, Equatable {
        case unrecognizedUsages([String])
        case signerExpired(Date)
        case encoding(String)

        public var description: String {
            switch self {
            case .unrecognizedUsages(let usages):
                "unrecognized usage values: [" + usages.map { "\"\($0)\"" }.joined(separator: " ") + "]"
            case .signerExpired(let date): "the signer has expired: NotAfter=\(date)"
            case .encoding(let why): "error encoding certificate: \(why)"
            }
        }
    }

    /// A PEM certificate for `request`, valid for `ttl` seconds from `now` (capped at the CA's own expiry).
    public func issue(_ request: CertificateRequest, usages: [String], ttl: TimeInterval, now: Date = Date())
        throws(SigningError) -> String
    {
        let (keyUsage, extendedUsages) = try Self.keyUsages(usages)
        let notBefore = now.addingTimeInterval(-Self.backdate)
        var notAfter = ttl < Self.shortLived ? now.addingTimeInterval(ttl) : now.addingTimeInterval(ttl - Self.backdate)
        if notAfter >= certificate.notValidAfter { notAfter = certificate.notValidAfter }
        if notBefore >= certificate.notValidAfter || now >= certificate.notValidAfter {
            throw .signerExpired(certificate.notValidAfter)
        }
        var names: [GeneralName] = request.dnsNames.map { .dnsName($0) }
        names += request.ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
        names += request.emailAddresses.map { .rfc822Name($0) }
        names += request.uris.map { .uniformResourceIdentifier($0) }
        let subjectIsEmpty = request.request.subject.isEmpty
        do {
            let authorityKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                if let keyUsage { Critical(keyUsage) }
                if !extendedUsages.isEmpty { try ExtendedKeyUsage(extendedUsages) }
                if let authorityKeyID { AuthorityKeyIdentifier(keyIdentifier: authorityKeyID) }
                // A subject-less certificate names its holder only here, so the extension is critical.
                if !names.isEmpty && subjectIsEmpty { Critical(SubjectAlternativeNames(names)) }
                if !names.isEmpty && !subjectIsEmpty { SubjectAlternativeNames(names) }
            }
            let issued = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: request.request.publicKey,
                notValidBefore: notBefore, notValidAfter: notAfter, issuer: certificate.subject,
                subject: request.request.subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: .init(key))
            return try issued.serializeAsPEM().pemString
        } catch {
            throw .encoding("\(error)")
        }
    }

    /// The key usage bits and extended key usages (in Go's order) the certificates API's usage names mean.
    static func keyUsages(_ usages: [String]) throws(SigningError) -> (KeyUsage?, [ExtendedKeyUsage.Usage]) {
        var bits = KeyUsage()
        var any = false
        var extended: [Int: ExtendedKeyUsage.Usage] = [:]
        var unrecognized: [String] = []
        for usage in usages {
            any = true
            switch usage {
            case "signing", "digital signature": bits.digitalSignature = true
            case "content commitment": bits.nonRepudiation = true
            case "key encipherment": bits.keyEncipherment = true
            case "key agreement": bits.keyAgreement = true
            case "data encipherment": bits.dataEncipherment = true
            case "cert sign": bits.keyCertSign = true
            case "crl sign": bits.cRLSign = true
            case "encipher only": bits.encipherOnly = true
            case "decipher only": bits.decipherOnly = true
            default:
                if let (order, eku) = extendedUsage(usage) { extended[order] = eku } else { unrecognized.append(usage) }
            }
        }
        if !unrecognized.isEmpty { throw .unrecognizedUsages(unrecognized) }
        let hasBits = any && bits != KeyUsage()
        return (hasBits ? bits : nil, extended.keys.sorted().compactMap { extended[$0] })
    }

    /// An extended key usage and its place in Go's `x509.ExtKeyUsage` order (the order it is written in).
    static func extendedUsage(_ name: String) -> (Int, ExtendedKeyUsage.Usage)? {
        switch name {
        case "any": (0, .any)
        case "server auth": (1, .serverAuth)
        case "client auth": (2, .clientAuth)
        case "code signing": (3, .codeSigning)
        case "email protection", "s/mime": (4, .emailProtection)
        case "ipsec end system": (5, .init(oid: [1, 3, 6, 1, 5, 5, 7, 3, 5]))
        case "ipsec tunnel": (6, .init(oid: [1, 3, 6, 1, 5, 5, 7, 3, 6]))
        case "ipsec user": (7, .init(oid: [1, 3, 6, 1, 5, 5, 7, 3, 7]))
        case "timestamping": (8, .timeStamping)
        case "ocsp signing": (9, .ocspSigning)
        case "microsoft sgc": (10, .init(oid: [1, 3, 6, 1, 4, 1, 311, 10, 3, 3]))
        case "netscape sgc": (11, .init(oid: [2, 16, 840, 1, 113730, 4, 1]))
        default: nil
        }
    }
}

extension PKI {
    /// The cluster CA with its key, for signing certificate requests.
    public func certificateAuthority() throws -> CertificateAuthority {
        try CertificateAuthority(certificatePEM: caPEM, keyPEM: caKeyPEM)
    }
}
