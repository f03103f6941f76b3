import BerthKube
import Foundation

/// Kubernetes' CEL libraries, as far as Berth's JSON-valued CEL carries them: quantities
/// (`quantity('1Gi').isGreaterThan(quantity(self.limit))`, `isQuantity`), URLs (`url(s).getHost()`,
/// `isURL`), IP addresses and CIDRs (CELNetworkLibrary.swift), and CEL's durations and timestamps
/// (CELTime.swift). Values stay JSON: a quantity is its value in milli-units, a URL its text — so they
/// compare and add as upstream's do, but are not types of their own (`quantity('1') == 1000` holds
/// here, where upstream would refuse the comparison).
extension CELEvaluator {
    /// The result of library function `name`, nil when `name` is not one of them.
    static func library(_ name: String, target: JSON?, args: [JSON]) throws -> JSON? {
        func milli(_ v: JSON) throws -> Int64 {
            guard let n = v.int, !v.isFloatingPoint else { throw CELError("no such overload: \(name)") }
            return n
        }
        switch (name, target, args.count) {
        case ("quantity", nil, 1):
            guard let text = args[0].string, let value = Quantity.milli(text) else {
                throw CELError("quantities must match the regular expression for quantities: \(args[0].text)")
            }
            return .int(value)
        case ("isQuantity", nil, 1):
            return .bool(args[0].string.flatMap(Quantity.milli) != nil)
        case ("isGreaterThan", .some(let t), 1): return .bool(try milli(t) > milli(args[0]))
        case ("isLessThan", .some(let t), 1): return .bool(try milli(t) < milli(args[0]))
        case ("compareTo", .some(let t), 1):
            let (a, b) = (try milli(t), try milli(args[0]))
            return .int(a < b ? -1 : (a > b ? 1 : 0))
        // add and sub take quantities (an int would be read as milli-units: not told apart here).
        case ("add", .some(let t), 1): return .int(try milli(t) + milli(args[0]))
        case ("sub", .some(let t), 1): return .int(try milli(t) - milli(args[0]))
        case ("asInteger", .some(let t), 0): return .int(try milli(t) / 1000)
        case ("asApproximateFloat", .some(let t), 0): return double(Double(try milli(t)) / 1000)
        case ("isInteger", .some(let t), 0): return .bool(try milli(t) % 1000 == 0)
        case ("sign", .some(let t), 0): return .int(try milli(t).signum())

        case ("url", nil, 1):
            guard let text = args[0].string, url(text) != nil else {
                throw CELError("URL parse error: \(args[0].text)")
            }
            return .string(text)
        case ("isURL", nil, 1): return .bool(args[0].string.flatMap(url) != nil)
        case ("getScheme", .some(let t), 0): return .string(try parsed(t).scheme ?? "")
        case ("getHost", .some(let t), 0):
            let u = try parsed(t)
            let host = u.host ?? ""
            return .string(host.contains(":") ? "[\(host)]" : host + (u.port.map { ":\($0)" } ?? ""))
        case ("getHostname", .some(let t), 0): return .string(try parsed(t).host ?? "")
        case ("getPort", .some(let t), 0): return .string(try parsed(t).port.map(String.init) ?? "")
        case ("getEscapedPath", .some(let t), 0): return .string(try parsed(t).percentEncodedPath)
        case ("getQuery", .some(let t), 0):
            var query: [String: JSON] = [:]
            for item in try parsed(t).queryItems ?? [] {
                let values = query[item.name]?.array ?? []
                query[item.name] = .array(values + [.string(item.value ?? "")])
            }
            return .object(query)

        default:
            if let value = try timeLibrary(name, target: target, args: args) { return value }
            return try networkLibrary(name, target: target, args: args)
        }
    }

    private static func url(_ text: String) -> URLComponents? {
        guard let u = URLComponents(string: text), u.scheme != nil || text.hasPrefix("/") else { return nil }
        return u
    }

    private static func parsed(_ v: JSON) throws -> URLComponents {
        guard let text = v.string, let u = url(text) else { throw CELError("no such overload: URL accessor") }
        return u
    }
}
