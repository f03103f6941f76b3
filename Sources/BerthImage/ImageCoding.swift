import BerthJSON
import FoundationEssentials

/// JSON of manifests, configs and the store's records. Decoding goes through BerthJSON (strict, depth
/// limited, and far cheaper than Foundation's decoder in a fresh process); encoding stays Foundation's,
/// whose bytes are what the digests of the manifests and configs written so far were taken over.
enum ImageCoding {
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        try JSONTreeDecoder.decode(type, from: bytes)
    }

    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }
}
