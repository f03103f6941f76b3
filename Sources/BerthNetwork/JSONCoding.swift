@_exported import BerthJSON

/// One encoder and decoder setting for everything this module writes: BerthJSON's tree coders, so keys are
/// sorted (files and plugin input are byte-for-byte reproducible, and diffable) and slashes in paths are not
/// escaped, without Foundation's coders. CNI configurations are ``JSON`` trees, passed through whole.
enum JSONCoding {
    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        try JSONTreeEncoder.encode(value, pretty: pretty)
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONTreeDecoder.decode(type, from: bytes)
    }
}
