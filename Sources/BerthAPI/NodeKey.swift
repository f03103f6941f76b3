import Crypto
import Foundation
import X509

/// A joining node's key and what it shows of it: the CSR it joins with, and the checks a restarted
/// agent makes on the certificates it stored (whose name they carry, until when they hold).
public struct NodeKey {
    public let privateKeyPEM: String
    let key: P256.Signing.PrivateKey

    /// A new P-256 key.
    public init() {
        key = P256.Signing.PrivateKey()
        privateKeyPEM = key.pemRepresentation
    }

    public init(pem: String) throws(JoinError) {
        do { key = try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw JoinError(.invalid, "the node key is not a PEM P-256 private key: \(error)")
        }
        privateKeyPEM = pem
    }

    /// A CSR naming the node as its certificate will (the server decides the name regardless).
    public func certificateSigningRequest(nodeName: String) throws(JoinError) -> String {
        do {
            let subject = try DistinguishedName {
                OrganizationName("system:nodes")
                CommonName("system:node:\(nodeName)")
            }
            let csr = try CertificateSigningRequest(
                version: .v1, subject: subject, privateKey: .init(key), attributes: .init(),
                signatureAlgorithm: .ecdsaWithSHA256)
            return try csr.serializeAsPEM().pemString
        } catch {
            throw JoinError(.invalid, "cannot make a certificate signing request: \(error)")
        }
    }

    /// Whether a stored certificate is still this node's: its key, the common name
    /// `system:node:<nodeName>`, and valid for at least another day.
    public func holds(certificatePEM: String, nodeName: String, now: Date = Date()) -> Bool {
        guard let certificate = try? Certificate(pemEncoded: certificatePEM) else { return false }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else { return false }
        let names = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        guard names.map({ "\($0.value)" }) == ["system:node:\(nodeName)"] else { return false }
        return certificate.notValidAfter > now.addingTimeInterval(86400)
    }
}
