import Foundation

/// The `format`s of OpenAPI string schemas that custom resources are checked against, as
/// kube-openapi's strfmt registry checks them for apiextensions (date-time, uuid, ipv4 …). A format
/// outside the registry is not checked, as upstream ignores it.
enum StringFormats {
    /// Whether `value` is of `format`; nil when the format is not one that is checked.
    static func conforms(_ value: String, to format: String) -> Bool? {
        switch format.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "") {
        case "datetime": return matches(dateTime, value) && validDate(String(value.prefix(10)))
        case "date": return matches(date, value) && validDate(value)
        case "uuid": return matches(uuid, value)
        case "uuid3": return matches(uuid, value) && version(value) == "3"
        case "uuid4": return matches(uuid, value) && version(value) == "4"
        case "uuid5": return matches(uuid, value) && version(value) == "5"
        case "ipv4": return address(value, family: AF_INET)
        case "ipv6": return address(value, family: AF_INET6)
        case "cidr": return FieldChecks.cidr(value) != nil
        case "mac": return matches(mac, value)
        case "hostname": return hostname(value)
        case "email": return matches(email, value)
        case "uri": return URLComponents(string: value).map { !($0.scheme ?? "").isEmpty } ?? false
        case "byte": return Data(base64Encoded: value) != nil
        case "duration": return matches(duration, value)
        case "hexcolor": return matches(hexColor, value)
        case "rgbcolor": return matches(rgbColor, value)
        case "bsonobjectid": return matches(objectID, value)
        default: return nil
        }
    }

    private static func regex(_ pattern: String) -> LinearRegex {
        // The patterns are constants of this file: a bad one is a programming error. Linear-time, as the
        // values come from any user (the email pattern backtracks quadratically in NSRegularExpression).
        try! LinearRegex(pattern)
    }
    static let dateTime = regex(
        #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#)
    static let date = regex(#"^\d{4}-\d{2}-\d{2}$"#)
    static let uuid = regex(
        #"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"#)
    static let mac = regex(#"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$"#)
    static let email = regex(#"^[^@\s]+@[^@\s]+\.[^@\s]+$"#)
    static let duration = regex(#"^(\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w))+$"#)
    static let hexColor = regex(#"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"#)
    static let rgbColor = regex(#"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$"#)
    static let objectID = regex(#"^[0-9a-fA-F]{24}$"#)

    private static func matches(_ r: LinearRegex, _ s: String) -> Bool {
        r.matches(s)
    }

    /// A calendar date that exists (no 2026-02-30).
    private static func validDate(_ s: String) -> Bool {
        let parts = s.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, (1...12).contains(parts[1]), parts[2] >= 1 else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let first = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: 1)),
            let days = calendar.range(of: .day, in: .month, for: first)
        else { return false }
        return days.contains(parts[2])
    }

    private static func version(_ uuid: String) -> Character? {
        let chars = Array(uuid)
        return chars.count > 14 ? chars[14] : nil
    }

    private static func address(_ s: String, family: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family, s, &buffer) == 1
    }

    /// An RFC 1123 host name: dot-separated labels of letters, digits and hyphens, at most 253 bytes.
    private static func hostname(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
