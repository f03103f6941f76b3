import BerthKube
import Foundation

/// Field checks the network, storage and node kinds share, with upstream's words
/// (k8s.io/apimachinery/pkg/util/validation/field and the helpers of pkg/apis/*/validation): each
/// returns the causes for one field, so a strategy's `validate` is a list of them.
enum FieldChecks {
    static func required(_ path: String, _ detail: String = "") -> APIError.Cause {
        .init(path, "FieldValueRequired", detail.isEmpty ? "Required value" : "Required value: \(detail)")
    }

    static func invalid(_ path: String, _ value: JSON, _ detail: String) -> APIError.Cause {
        .init(path, "FieldValueInvalid", "Invalid value: \(value.text): \(detail)")
    }

    static func forbidden(_ path: String, _ detail: String) -> APIError.Cause {
        .init(path, "FieldValueForbidden", "Forbidden: \(detail)")
    }

    /// A value outside a closed set: `Unsupported value: "x": supported values: "a", "b"`.
    static func supported(_ value: JSON, _ values: [String], _ path: String) -> [APIError.Cause] {
        guard let text = value.string else { return value.isNull ? [] : [invalid(path, value, "must be a string")] }
        if values.contains(text) { return [] }
        let listed = values.map { "\"\($0)\"" }.joined(separator: ", ")
        return [.init(path, "FieldValueNotSupported", "Unsupported value: \"\(text)\": supported values: \(listed)")]
    }

    /// ValidateImmutableField: the value may not change in an update.
    static func immutable(_ new: JSON, _ old: JSON, _ path: String) -> [APIError.Cause] {
        new == old ? [] : [invalid(path, new, "field is immutable")]
    }

    static func dns1123Subdomain(_ value: String, _ path: String) -> [APIError.Cause] {
        Validation.isDNS1123Subdomain(value) ? [] : [invalid(path, .string(value), Validation.nameRegexText)]
    }

    static func dns1123Label(_ value: String, _ path: String) -> [APIError.Cause] {
        Validation.isDNS1123Label(value) ? [] : [invalid(path, .string(value), Validation.labelNameText)]
    }

    /// A qualified name such as a CSI driver's or a provisioner's (`example.com/driver`, at most 63
    /// characters in its name part).
    static func qualifiedName(_ value: String, _ path: String) -> [APIError.Cause] {
        if value.isEmpty { return [required(path)] }
        return Validation.isQualifiedName(value)
            ? []
            : [
                invalid(
                    path, .string(value),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                )
            ]
    }

    /// IsValidPortNum.
    static func portNumber(_ value: Int64, _ path: String) -> [APIError.Cause] {
        (1...65535).contains(value) ? [] : [invalid(path, .int(value), "must be between 1 and 65535, inclusive")]
    }

    /// IsValidPortName (IANA_SVC_NAME): at most 15 characters, lower-case letters, digits and single
    /// inner dashes, at least one letter.
    static func portName(_ value: String, _ path: String) -> [APIError.Cause] {
        let bytes = Array(value.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
        let letter = bytes.contains { $0 >= 0x61 && $0 <= 0x7a }
        var problems: [String] = []
        if bytes.count > 15 || bytes.isEmpty { problems.append("must be no more than 15 characters") }
        if !allowed { problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)") }
        if value.contains("--") { problems.append("must not contain consecutive hyphens") }
        if !letter { problems.append("must contain at least one letter (a-z)") }
        if value.hasPrefix("-") || value.hasSuffix("-") { problems.append("must not begin or end with a hyphen") }
        return problems.map { invalid(path, .string(value), $0) }
    }

    /// A port given as a number or a name (ValidatePortNumOrName).
    static func portNumberOrName(_ value: JSON, _ path: String) -> [APIError.Cause] {
        if let number = value.int { return portNumber(number, path) }
        if let name = value.string { return portName(name, path) }
        return [invalid(path, value, "must be a port number or name")]
    }

    /// A quantity that may not be negative (ValidateNonnegativeQuantity).
    static func nonNegativeQuantity(_ value: JSON, _ path: String) -> [APIError.Cause] {
        guard !value.isNull else { return [] }
        guard let text = value.string ?? value.int.map(String.init), let milli = Quantity.milli(text) else {
            return [invalid(path, value, "must be a quantity")]
        }
        return milli < 0 ? [invalid(path, value, "must be greater than or equal to 0")] : []
    }

    /// IsValidLabelValue, reported at `path`.
    static func labelValue(_ value: JSON, _ path: String) -> [APIError.Cause] {
        guard let text = value.string else { return [invalid(path, value, "must be a string")] }
        var errs: [APIError.Cause] = []
        if text.utf8.count > 63 { errs.append(invalid(path, value, "must be no more than 63 characters")) }
        // The pattern alone (the length is reported above): a long value of valid characters passes it.
        if !Validation.matchesLabelValuePattern(text) { errs.append(invalid(path, value, Validation.labelValueText)) }
        return errs
    }

    /// ValidateLabels: each key a qualified name, each value a label value, all reported at `path`.
    static func labels(_ map: JSON, _ path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        for (key, value) in (map.object ?? [:]).sorted(by: { $0.key < $1.key }) {
            errs += qualifiedName(key, path)
            errs += labelValue(value, path)
        }
        return errs
    }

    /// ValidateLabelSelector: label keys and values, and each expression's operator and values.
    static func labelSelector(_ selector: JSON, _ path: String) -> [APIError.Cause] {
        guard !selector.isNull else { return [] }
        var errs: [APIError.Cause] = []
        for (key, value) in selector["matchLabels"].object ?? [:] {
            if !Validation.isQualifiedName(key) {
                errs += qualifiedName(key, "\(path).matchLabels")
            }
            if let text = value.string, !Validation.isLabelValue(text) {
                errs.append(invalid("\(path).matchLabels", value, Validation.labelValueText))
            }
        }
        for (index, expression) in (selector["matchExpressions"].array ?? []).enumerated() {
            let at = "\(path).matchExpressions[\(index)]"
            errs += qualifiedName(expression["key"].string ?? "", "\(at).key")
            let values = expression["values"].array ?? []
            switch expression["operator"].string ?? "" {
            case "In", "NotIn":
                if values.isEmpty {
                    errs.append(
                        required("\(at).values", "must be specified when `operator` is 'In' or 'NotIn'"))
                }
            case "Exists", "DoesNotExist":
                if !values.isEmpty {
                    errs.append(
                        forbidden("\(at).values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
                }
            default:
                errs.append(invalid("\(at).operator", expression["operator"], "not a valid selector operator"))
            }
        }
        return errs
    }

    /// An IPv4 or IPv6 network in CIDR notation: its address bytes and prefix length.
    static func cidr(_ text: String) -> (address: [UInt8], prefix: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), let address = ipAddress(String(parts[0])),
            (0...(address.count * 8)).contains(prefix)
        else { return nil }
        return (address, prefix)
    }

    /// An address's bytes (4 for IPv4, 16 for IPv6), or nil.
    static func ipAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// An address as Go's net.ParseIP reads it (Kubernetes' ParseIPSloppy): IPv4 may have leading zeros,
    /// read as decimal, and an IPv4-mapped IPv6 address is the IPv4 address (Go's To4). 4 bytes for
    /// IPv4, 16 for IPv6, nil for anything else.
    static func ipSloppy(_ text: String) -> [UInt8]? {
        if let bytes = ipAddress(text) {
            let mapped =
                bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
            return mapped ? Array(bytes[12...]) : bytes
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            let value = part.drop { $0 == "0" }
            guard value.count <= 3, let byte = UInt8(value.isEmpty ? "0" : value) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// IsValidIP.
    static func ip(_ value: String, _ path: String) -> [APIError.Cause] {
        ipSloppy(value) != nil
            ? [] : [invalid(path, .string(value), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    }

    /// IsValidIPv4Address.
    static func ipv4(_ value: String, _ path: String) -> [APIError.Cause] {
        ipSloppy(value)?.count == 4 ? [] : [invalid(path, .string(value), "must be a valid IPv4 address")]
    }

    /// IsValidIPv6Address (an IPv4-mapped address is IPv4 here, as in Go).
    static func ipv6(_ value: String, _ path: String) -> [APIError.Cause] {
        ipSloppy(value)?.count == 16 ? [] : [invalid(path, .string(value), "must be a valid IPv6 address")]
    }

    /// ValidateEndpointIP: an address traffic for a Service may be sent to. Unspecified and loopback
    /// addresses would mean whichever node the traffic is on rather than a backend, and link-local ones
    /// are node-centric (a cloud's metadata service at 169.254.169.254): an endpoint there would let a
    /// Service's clients reach what they should not. `allowLoopback`: see ``EndpointsStrategy``.
    static func endpointIP(_ value: String, _ path: String, allowLoopback: Bool = false) -> [APIError.Cause] {
        guard let b = ipSloppy(value) else { return [invalid(path, .string(value), "must be a valid IP address")] }
        let v4 = b.count == 4
        var problems: [String] = []
        if b.allSatisfy({ $0 == 0 }) { problems.append("may not be unspecified (\(value))") }
        if !allowLoopback && (v4 ? b[0] == 127 : b == [UInt8](repeating: 0, count: 15) + [1]) {
            problems.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
        }
        if v4 ? b[0] == 169 && b[1] == 254 : b[0] == 0xfe && b[1] & 0xc0 == 0x80 {
            problems.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        if v4 ? b[0] == 224 && b[1] == 0 && b[2] == 0 : b[0] == 0xff && b[1] & 0x0f == 0x02 {
            problems.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        return problems.map { invalid(path, .string(value), $0) }
    }

    /// IsFullyQualifiedDomainName: a DNS subdomain of at least two labels (a trailing dot allowed).
    static func fullyQualifiedDomainName(_ value: String, _ path: String) -> [APIError.Cause] {
        if value.isEmpty { return [required(path)] }
        let name = value.hasSuffix(".") ? String(value.dropLast()) : value
        if !Validation.isDNS1123Subdomain(name) { return [invalid(path, .string(name), Validation.nameRegexText)] }
        guard name.contains(".") else {
            return [invalid(path, .string(name), "should be a domain with at least two segments separated by dots")]
        }
        return name.split(separator: ".").flatMap { dns1123Label(String($0), path) }
    }

    /// Whether `inner` lies within `outer` (same family, a prefix at least as long, the same leading bits).
    static func contains(_ outer: (address: [UInt8], prefix: Int), _ inner: (address: [UInt8], prefix: Int)) -> Bool {
        guard outer.address.count == inner.address.count, inner.prefix >= outer.prefix else { return false }
        for bit in 0..<outer.prefix {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if outer.address[bit / 8] & mask != inner.address[bit / 8] & mask { return false }
        }
        return true
    }
}
