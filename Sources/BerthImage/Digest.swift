import Crypto
import FoundationEssentials

/// A content digest `algorithm:hex`. Only sha256 is produced; sha512 is accepted when parsing.
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let algorithm: String
    public let hex: String

    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let algorithm = String(text[..<colon])
        let hex = String(text[text.index(after: colon)...])
        let length: Int
        switch algorithm {
        case "sha256": length = 64
        case "sha512": length = 128
        default: return nil
        }
        guard hex.utf8.count == length,
            hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { return nil }
        self.algorithm = algorithm
        self.hex = hex
    }

    public init(sha256Hex hex: String) {
        self.algorithm = "sha256"
        self.hex = hex
    }

    public static func sha256(_ bytes: [UInt8]) -> Digest {
        Digest(sha256Hex: SHA256.hash(data: bytes).hexString)
    }

    public var description: String { "\(algorithm):\(hex)" }
    public var shortID: String { String(hex.prefix(12)) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = Digest(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "invalid digest \(text)"))
        }
        self = d
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }
}

/// Streaming sha256 that yields a ``Digest``.
public struct DigestHasher: @unchecked Sendable {
    private var hasher = SHA256()
    public private(set) var count: Int64 = 0
    public init() {}
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: buffer)
        count += Int64(buffer.count)
    }
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }
    public func finalize() -> Digest { Digest(sha256Hex: hasher.finalize().hexString) }
}

extension Sequence where Element == UInt8 {
    var hexString: String {
        let table = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self { out.append(table[Int(b >> 4)]); out.append(table[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension SHA256.Digest {
    var hexString: String { Array(self).hexString }
}
