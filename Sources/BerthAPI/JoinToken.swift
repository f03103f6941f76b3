import Crypto
import Foundation
import X509

/// The secret a machine needs to join the cluster as a node, in k3s's "secure" format:
///
///     K10<sha256 hex of the CA certificate's DER>::server:<secret>
///
/// The CA hash is not secret: it lets a joining agent, which has never seen the cluster, pin the CA
/// it is given over an unverified first connection. The secret is what the API server checks.
public struct JoinToken: Sendable, Equatable, CustomStringConvertible {
    /// Lower-case hex SHA-256 of the cluster CA certificate's DER.
    public var caHash: String
    public var secret: String

    public static let prefix = "K10"
    static let separator = "::server:"
    /// What a malformed token's error says the format is.
    public static let format = "K10<sha256 hex of the CA certificate>::server:<secret>"

    public init(caHash: String, secret: String) {
        self.caHash = caHash
        self.secret = secret
    }

    /// The token as `berth server` writes it and `berth agent --token-file` reads it.
    public var description: String { Self.prefix + caHash + Self.separator + secret }

    /// Parses a token (surrounding white space, such as a file's newline, is ignored).
    public init(parsing text: String) throws(JoinError) {
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.hasPrefix(Self.prefix), let range = token.range(of: Self.separator) else {
            throw JoinError(.malformedToken, "the join token is malformed: expected \(Self.format)")
        }
        let hash = String(token[token.index(token.startIndex, offsetBy: Self.prefix.count)..<range.lowerBound])
        let secret = String(token[range.upperBound...])
        guard hash.count == 64, hash.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw JoinError(
                .malformedToken,
                "the join token is malformed: its CA hash \"\(hash)\" is not 64 lower-case hex digits (expected \(Self.format))"
            )
        }
        guard !secret.isEmpty, !secret.contains(where: { $0.isWhitespace || $0 == ":" }) else {
            throw JoinError(
                .malformedToken,
                "the join token is malformed: its secret is empty or has spaces (expected \(Self.format))")
        }
        self.init(caHash: hash, secret: secret)
    }

    /// A new token for the CA: 32 random bytes of secret, hex.
    public static func generate(caPEM: String) throws -> JoinToken {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }
        return JoinToken(caHash: try caHash(pem: caPEM), secret: secret.joined())
    }

    /// The hash a token pins: SHA-256 of the first certificate's DER, as k3s hashes its CA bundle's.
    public static func caHash(pem: String) throws -> String {
        let certificate = try Certificate(pemEncoded: pem)
        let der = try certificate.serializeAsPEM().derBytes
        return SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `presented` (a whole token, or only its secret as k3s also accepts) is this token. The
    /// secrets are compared through their digests so that neither their bytes nor their lengths show
    /// in the time the comparison takes.
    public func accepts(_ presented: String) -> Bool {
        let text = presented.trimmingCharacters(in: .whitespacesAndNewlines)
        let candidate: String
        if text.hasPrefix(Self.prefix) {
            guard let parsed = try? JoinToken(parsing: text), parsed.caHash == caHash else { return false }
            candidate = parsed.secret
        } else {
            candidate = text
        }
        let a = SHA256.hash(data: Array(candidate.utf8))
        let b = SHA256.hash(data: Array(secret.utf8))
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// `<data-dir>/token`: read, or made on first start (mode 0600). A token whose CA hash is not the
    /// CA's (the CA was made anew) keeps its secret and takes the new hash, so agents joining later pin
    /// the CA the server really presents.
    public static func loadOrCreate(dataDir: String, caPEM: String) throws -> (token: JoinToken, path: String) {
        let path = dataDir + "/token"
        let hash = try caHash(pem: caPEM)
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var token = try JoinToken(parsing: text)
            if token.caHash == hash { return (token, path) }
            token.caHash = hash
            try FileManager.default.removeItem(atPath: path)
            try writeNewFile(path, Data((token.description + "\n").utf8), permissions: 0o600)
            return (token, path)
        }
        let token = try generate(caPEM: caPEM)
        try writeNewFile(path, Data((token.description + "\n").utf8), permissions: 0o600)
        return (token, path)
    }
}

/// The API server's two unauthenticated endpoints for joining nodes (see `Handler.unauthenticated`).
public enum JoinPaths {
    /// GET: the cluster CA, PEM.
    public static let caCerts = "/cacerts"
    /// POST: a node's certificates for the join token and a CSR.
    public static let join = "/berth/v1/join"
}

/// Why joining a node failed, on either side.
public struct JoinError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// The token is not `K10<hash>::server:<secret>`.
        case malformedToken
        /// The server's CA is not the one the token pins.
        case caMismatch
        /// The server refused the join (its status and message say why).
        case refused(status: Int)
        /// The server could not be reached, or answered something that is not a join answer.
        case unreachable
        /// A request, certificate or file that cannot be made or read.
        case invalid
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
