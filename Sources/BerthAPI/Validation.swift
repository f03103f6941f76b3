import Foundation

/// Upstream's name and label rules (k8s.io/apimachinery/pkg/util/validation) and the object-metadata
/// checks every kind shares; each kind's own checks are its strategy's `validate` (Strategies/).
public enum Validation {
    static func isDNS1123Label(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 63 else { return false }
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }
    /// A DNS-1035 label: a DNS-1123 label that starts with a letter (API version names, kinds lower-cased).
    static func isDNS1035Label(_ s: String) -> Bool {
        guard let first = s.utf8.first, first >= 0x61 && first <= 0x7a else { return false }
        return isDNS1123Label(s)
    }
    static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }
    static func isLabelValue(_ s: String) -> Bool { s.utf8.count <= 63 && matchesLabelValuePattern(s) }
    /// The label value pattern alone, whatever the length: empty, or alphanumerics, '-', '_' and '.'
    /// starting and ending with an alphanumeric.
    static func matchesLabelValuePattern(_ s: String) -> Bool {
        if s.isEmpty { return true }
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
        }
        return alnum(u.first!) && alnum(u.last!)
            && u.allSatisfy {
                alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
    }
    /// IsValidLabelValue's message when the pattern does not match.
    static let labelValueText =
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    static func isQualifiedName(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2 {
            return isDNS1123Subdomain(String(parts[0])) && isLabelValue(String(parts[1])) && !parts[1].isEmpty
        }
        return parts.count == 1 && !s.isEmpty && isLabelValue(s)
    }

    static let nameRegexText =
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let labelNameText =
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

    /// Validates an object about to be stored; returns field errors.
    public static func validate(_ obj: JSON, _ r: ResourceType) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let name = obj["metadata"]["name"].string ?? ""
        if name.isEmpty {
            errs.append(
                .init("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
        } else if r.strategy.namesArePathSegments {
            for message in pathSegmentNameErrors(name) {
                errs.append(.init("metadata.name", "FieldValueInvalid", "Invalid value: \"\(name)\": \(message)"))
            }
        } else if r.strategy.namesAreLabels ? !isDNS1123Label(name) : !isDNS1123Subdomain(name) {
            errs.append(
                .init(
                    "metadata.name", "FieldValueInvalid",
                    "Invalid value: \"\(name)\": \(r.strategy.namesAreLabels ? labelNameText : nameRegexText)"))
        }
        for field in ["labels", "annotations"] {
            let v = obj["metadata"][field]
            if v.isNull { continue }
            guard let m = v.object else {
                errs.append(.init("metadata.\(field)", "FieldValueInvalid", "Invalid value: must be a map of strings"));
                continue
            }
            for (k, val) in m {
                if !isQualifiedName(k) {
                    errs.append(
                        .init(
                            "metadata.\(field)", "FieldValueInvalid",
                            "Invalid value: \"\(k)\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                        ))
                }
                guard let s = val.string else {
                    errs.append(
                        .init("metadata.\(field).\(k)", "FieldValueInvalid", "Invalid value: must be a string"));
                    continue
                }
                if field == "labels" && !isLabelValue(s) {
                    errs.append(
                        .init(
                            "metadata.labels", "FieldValueInvalid",
                            "Invalid value: \"\(s)\": \(labelValueText)"
                        ))
                }
            }
        }
        return errs + r.strategy.validate(obj)
    }

    /// Upstream's `path.IsValidPathSegmentName`: what RBAC names must be (`system:node` is one).
    static func pathSegmentNameErrors(_ name: String) -> [String] {
        if name == "." || name == ".." { return ["may not be '\(name)'"] }
        var errors: [String] = []
        for illegal in ["/", "%"] where name.contains(illegal) { errors.append("may not contain '\(illegal)'") }
        return errors
    }

    static func isConfigKey(_ k: String) -> Bool {
        !k.isEmpty && k.count <= 253 && k != "." && k != ".."
            && k.utf8.allSatisfy { c in
                (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d
                    || c == 0x5f || c == 0x2e
            }
    }
}

extension Validation {
    /// Metadata rules of every update (upstream's ValidateObjectMetaUpdate, the part Berth enforces): an
    /// object being deleted may lose finalizers but gain none, since its deletion waits only for the
    /// finalizers it had when the delete was accepted.
    static func metadataUpdate(_ obj: JSON, old: JSON) -> [APIError.Cause] {
        guard !old["metadata"]["deletionTimestamp"].isNull else { return [] }
        let before = Set((old["metadata"]["finalizers"].array ?? []).compactMap(\.string))
        let added = (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string).filter { !before.contains($0) }
        if added.isEmpty { return [] }
        return [
            .init(
                "metadata.finalizers", "FieldValueForbidden",
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers \(JSON.array(added.map { .string($0) }).text)"
            )
        ]
    }
}
