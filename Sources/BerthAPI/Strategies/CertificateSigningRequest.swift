import Foundation
import X509

/// certificates.k8s.io/v1 CertificateSigningRequest (upstream pkg/registry/certificates/certificates,
/// pkg/apis/certificates/validation and the CertificateApproval, CertificateSigning and
/// CertificateSubjectRestriction admission plugins).
///
/// Three ways in, each changing one part: the object itself (metadata only — spec is fixed at create,
/// status is never written here), `/approval` (the Approved and Denied conditions, for whoever may
/// `approve` the request's signer) and `/status` (the certificate and other conditions, for whoever may
/// `sign` for the signer). On create the requester's identity is written into the spec from the request,
/// never from the body, so an approver can trust it.
struct CertificateSigningRequestStrategy: ResourceStrategy {
    static let group = "certificates.k8s.io"
    static let resource = "certificatesigningrequests"
    static let legacyUnknownSigner = "kubernetes.io/legacy-unknown"
    static let apiServerClientSigner = "kubernetes.io/kube-apiserver-client"
    static let approvalTypes = ["Approved", "Denied"]
    /// Condition types whose only allowed status is True.
    static let trueOnlyTypes = ["Approved", "Denied", "Failed"]
    static let knownUsages = [
        "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
        "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth",
        "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
        "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
    ]

    /// Upstream validates no name rule of its own ("we don't care what you call your certificate
    /// requests"); a name must still be a usable path segment.
    var namesArePathSegments: Bool { true }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        for field in ["username", "uid", "groups", "extra"] { obj["spec"][field] = .null }
        if let user = ctx.user {
            obj["spec"]["username"] = .string(user.name)
            if !user.groups.isEmpty { obj["spec"]["groups"] = .array(user.groups.map { .string($0) }) }
            if !user.uid.isEmpty { obj["spec"]["uid"] = .string(user.uid) }
            if !user.extra.isEmpty { obj["spec"]["extra"] = user.json["extra"] }
        }
        // Nobody creates a request already approved or issued.
        obj["status"] = [:]
    }

    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        obj["spec"] = old["spec"]
        switch ctx.subresource {
        case "status":
            Self.stampConditions(&obj, old: old)
        case "approval":
            obj["status"]["certificate"] = old["status"]["certificate"]
            Self.stampConditions(&obj, old: old)
        default:
            obj["status"] = old["status"]
        }
    }

    /// Conditions written without times get now as lastUpdateTime, and keep the lastTransitionTime of an
    /// old condition of the same type and status.
    static func stampConditions(_ obj: inout JSON, old: JSON) {
        guard var conditions = obj["status"]["conditions"].array else { return }
        let now = JSON.string(Handler.now())
        let before = old["status"]["conditions"].array ?? []
        for i in conditions.indices {
            if (conditions[i]["lastUpdateTime"].string ?? "").isEmpty { conditions[i]["lastUpdateTime"] = now }
            if (conditions[i]["lastTransitionTime"].string ?? "").isEmpty {
                let same = before.first {
                    $0["type"] == conditions[i]["type"] && $0["status"] == conditions[i]["status"]
                        && !($0["lastTransitionTime"].string ?? "").isEmpty
                }
                conditions[i]["lastTransitionTime"] = same?["lastTransitionTime"] ?? now
            }
        }
        obj["status"]["conditions"] = .array(conditions)
    }

    // MARK: validation

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        let request = Self.bytes(spec["request"])
        do { _ = try CertificateRequest(pem: request ?? []) } catch {
            errs.append(
                .init("spec.request", "FieldValueInvalid", "Invalid value: \(GoBytes.literal(request)): \(error)"))
        }
        let usages = spec["usages"].array ?? []
        if usages.isEmpty { errs.append(FieldChecks.required("spec.usages")) }
        var seen: Set<String> = []
        let sortedUsages = Self.knownUsages.sorted()
        for (i, usage) in usages.enumerated() {
            errs += FieldChecks.supported(usage, sortedUsages, "spec.usages[\(i)]")
        }
        for (i, usage) in usages.enumerated() {
            let text = usage.string ?? ""
            if seen.contains(text) {
                errs.append(.init("spec.usages[\(i)]", "FieldValueDuplicate", "Duplicate value: \(usage.text)"))
            }
            seen.insert(text)
        }
        let signer = spec["signerName"].string ?? ""
        if signer == Self.legacyUnknownSigner {
            errs.append(
                FieldChecks.invalid(
                    "spec.signerName", .string(signer), "the legacy signerName is not allowed via this API version"))
        } else {
            errs += Self.signerNameErrors(signer, "spec.signerName")
        }
        if let seconds = spec["expirationSeconds"].int, seconds < 600 {
            errs.append(
                FieldChecks.invalid(
                    "spec.expirationSeconds", .int(seconds),
                    "may not specify a duration less than 600 seconds (10 minutes)"
                ))
        }
        errs += Self.conditionErrors(obj["status"]["conditions"].array ?? [])
        if let problem = Self.certificateProblem(Self.bytes(obj["status"]["certificate"]) ?? []) {
            errs.append(FieldChecks.invalid("status.certificate", "<certificate data>", problem))
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        func conditions(_ o: JSON, _ type: String) -> [JSON] {
            (o["status"]["conditions"].array ?? []).filter { $0["type"].string == type }
        }
        for type in ["Approved", "Denied", "Failed"] where conditions(obj, type).count < conditions(old, type).count {
            errs.append(
                FieldChecks.forbidden("status.conditions", "updates may not remove a condition of type \"\(type)\""))
        }
        if ctx.subresource != "approval" {
            for type in Self.approvalTypes {
                let (new, before) = (conditions(obj, type), conditions(old, type))
                if new.count > before.count {
                    errs.append(
                        FieldChecks.forbidden(
                            "status.conditions", "updates may not add a condition of type \"\(type)\""))
                } else if new.count == before.count && new.map(Self.comparable) != before.map(Self.comparable) {
                    errs.append(
                        FieldChecks.forbidden(
                            "status.conditions", "updates may not modify a condition of type \"\(type)\""))
                }
            }
        }
        let certificate = obj["status"]["certificate"].string ?? ""
        let oldCertificate = old["status"]["certificate"].string ?? ""
        if certificate != oldCertificate {
            if ctx.subresource != "status" {
                errs.append(FieldChecks.forbidden("status.certificate", "updates may not set certificate content"))
            } else if !oldCertificate.isEmpty {
                errs.append(
                    FieldChecks.forbidden("status.certificate", "updates may not modify existing certificate content"))
            }
        }
        return errs
    }

    /// A condition as upstream compares them (semantically: an absent field equals an empty one).
    static func comparable(_ condition: JSON) -> [String] {
        ["type", "status", "reason", "message", "lastUpdateTime", "lastTransitionTime"].map {
            condition[$0].string ?? ""
        }
    }

    static func conditionErrors(_ conditions: [JSON]) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        var seen: Set<String> = []
        var approved = false, denied = false
        for (i, condition) in conditions.enumerated() {
            let path = "status.conditions[\(i)]"
            let type = condition["type"].string ?? ""
            if type.isEmpty { errs.append(FieldChecks.required(path + ".type")) }
            let allowed = trueOnlyTypes.contains(type) ? ["True"] : ["False", "True", "Unknown"]
            let status = condition["status"]
            if (status.string ?? "").isEmpty {
                errs.append(FieldChecks.required(path + ".status"))
            } else {
                errs += FieldChecks.supported(status, allowed, path + ".status")
            }
            if type == "Approved" || type == "Denied" {
                if (type == "Approved" && denied) || (type == "Denied" && approved) {
                    errs.append(
                        FieldChecks.invalid(
                            path + ".type", .string(type), "Approved and Denied conditions are mutually exclusive"))
                }
                if type == "Approved" { approved = true } else { denied = true }
            }
            if seen.contains(type) {
                errs.append(.init(path + ".type", "FieldValueDuplicate", "Duplicate value: \"\(type)\""))
            }
            seen.insert(type)
        }
        return errs
    }

    /// Why `status.certificate` is not a list of PEM certificates; nil when it is (or is empty).
    static func certificateProblem(_ pem: [UInt8]) -> String? {
        if pem.isEmpty { return nil }
        let blocks = PEMBlock.all(in: pem)
        if blocks.isEmpty { return "must contain at least one CERTIFICATE PEM block" }
        for block in blocks {
            if block.type != "CERTIFICATE" {
                return "only CERTIFICATE PEM blocks are allowed, found \(GoFormat.quoted(block.type))"
            }
            if block.hasHeaders { return "no PEM block headers are permitted" }
            if (try? Certificate(derEncoded: block.der)) == nil { return "x509: malformed certificate" }
        }
        return nil
    }

    /// A signer name as `example.com/signer-name` (upstream's ValidateSignerName): a domain of at least
    /// two DNS labels, one slash, a path of DNS subdomains joined by dots.
    static func signerNameErrors(_ name: String, _ path: String) -> [APIError.Cause] {
        if name.isEmpty { return [FieldChecks.required(path)] }
        let segments = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard segments.count == 2 else {
            return [
                FieldChecks.invalid(
                    path, .string(name),
                    "must be a fully qualified domain and path of the form 'example.com/signer-name'")
            ]
        }
        var errs: [APIError.Cause] = []
        let (domain, signer) = (segments[0], segments[1])
        if domain.utf8.count > 253 {
            errs.append(.init(path, "FieldValueTooLong", "Too long: may not be more than 253 bytes"))
        }
        let domainLabels = domain.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for label in domainLabels {
            let problems = labelProblems(label)
            if problems.isEmpty { continue }
            for problem in problems {
                errs.append(
                    FieldChecks.invalid(path, .string(domain), "validating label \(GoFormat.quoted(label)): \(problem)")
                )
            }
            break
        }
        if domainLabels.count < 2 {
            errs.append(
                FieldChecks.invalid(
                    path, .string(domain), "should be a domain with at least two segments separated by dots"))
        }
        for label in signer.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
            var problems: [String] = []
            if label.utf8.count > 253 { problems.append("must be no more than 253 characters") }
            if !labelShaped(label) { problems.append(Validation.nameRegexText) }
            if problems.isEmpty { continue }
            for problem in problems {
                errs.append(
                    FieldChecks.invalid(path, .string(signer), "validating label \(GoFormat.quoted(label)): \(problem)")
                )
            }
            break
        }
        // A DNS subdomain, a DNS label, one dot and one slash.
        let longest = 253 + (253 + 63 + 1) + 1
        if name.utf8.count > longest {
            errs.append(.init(path, "FieldValueTooLong", "Too long: may not be more than \(longest) bytes"))
        }
        return errs
    }

    /// IsDNS1123Label's messages for one label of a domain (which has no dots).
    static func labelProblems(_ label: String) -> [String] {
        var problems: [String] = []
        if label.utf8.count > 63 { problems.append("must be no more than 63 characters") }
        if !labelShaped(label) { problems.append(Validation.labelNameText) }
        return problems
    }

    /// The RFC 1123 label pattern without its length limit: lower-case letters, digits and inner dashes.
    static func labelShaped(_ label: String) -> Bool {
        let u = Array(label.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
        guard let first = u.first, let last = u.last, alnum(first), alnum(last) else { return false }
        return u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// A base64 field's bytes (nil when absent; the decoder already refused bad base64).
    static func bytes(_ value: JSON) -> [UInt8]? {
        guard let text = value.string else { return nil }
        return Data(base64Encoded: text).map(Array.init) ?? []
    }

    // MARK: admission

    /// CertificateSubjectRestriction: nobody asks the kube-apiserver-client signer for a system:masters
    /// certificate, which would be cluster-admin without any binding. A request that does not parse is
    /// left to validation, which names the field.
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        guard obj["spec"]["signerName"].string == Self.apiServerClientSigner,
            let request = try? CertificateRequest(pem: Self.bytes(obj["spec"]["request"]) ?? []),
            request.organizations.contains("system:masters")
        else { return }
        throw Self.forbidden(
            obj, "use of \(Self.apiServerClientSigner) signer with system:masters group is not allowed")
    }

    /// CertificateApproval and CertificateSigning: an approval needs `approve`, a new certificate `sign`,
    /// on the request's signer (`signers`, by name or as `<domain>/*`).
    func admitUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        guard let user = ctx.user else { return }
        let signer = old["spec"]["signerName"].string ?? ""
        switch ctx.subresource {
        case "approval":
            if try await handler.mayUseSigner(user, verb: "approve", signer: signer) { return }
            throw Self.forbidden(
                obj, "user not permitted to approve requests with signerName \(GoFormat.quoted(signer))")
        case "status" where obj["status"]["certificate"] != old["status"]["certificate"]:
            if try await handler.mayUseSigner(user, verb: "sign", signer: signer) { return }
            throw Self.forbidden(obj, "user not permitted to sign requests with signerName \(GoFormat.quoted(signer))")
        default:
            return
        }
    }

    static func forbidden(_ obj: JSON, _ reason: String) -> APIError {
        let name = obj["metadata"]["name"].string ?? ""
        return APIError.forbidden("\(resource).\(group) \(GoFormat.quoted(name)) is forbidden: \(reason)")
    }

    // MARK: printing

    var fieldLabels: FieldLabelSet {
        .init(getters: ["spec.signerName": FieldLabels.string("spec.signerName")], ownConversion: false)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, Tables.ageColumn, .init(name: "SignerName"), .init(name: "Requestor"),
            .init(name: "RequestedDuration"), .init(name: "Condition"),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        let duration = spec["expirationSeconds"].int.map { Tables.duration(Double($0)) } ?? "<none>"
        let signer = spec["signerName"].string ?? ""
        return [
            Tables.nameCell(obj), Tables.ageCell(obj), .string(signer.isEmpty ? "<none>" : signer),
            .string(spec["username"].string ?? ""), .string(duration), .string(Self.condition(obj)),
        ]
    }

    /// kubectl's CONDITION: Denied over Approved over Pending, then Failed and Issued.
    static func condition(_ obj: JSON) -> String {
        let types = Set((obj["status"]["conditions"].array ?? []).compactMap { $0["type"].string })
        var text = types.contains("Denied") ? "Denied" : types.contains("Approved") ? "Approved" : "Pending"
        if types.contains("Failed") { text += ",Failed" }
        if !(obj["status"]["certificate"].string ?? "").isEmpty { text += ",Issued" }
        return text
    }
}

extension Handler {
    /// Upstream's IsAuthorizedForSignerName: `verb` on the signer by name, or on every signer of its
    /// domain (`example.com/*`).
    func mayUseSigner(_ user: UserInfo, verb: String, signer: String) async throws -> Bool {
        let domain = String(signer.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        for name in [signer, domain + "/*"] {
            let attributes = AuthorizationAttributes(
                user: user, verb: verb, apiGroup: CertificateSigningRequestStrategy.group, resource: "signers",
                name: name)
            if try await decide(attributes).allowed { return true }
        }
        return false
    }
}

/// Go's `%#v` of a byte slice, the way field errors print a `[]byte` value: `[]byte{0x2d, 0x2d}`.
enum GoBytes {
    static func literal(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "[]byte(nil)" }
        return "[]byte{" + bytes.map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + "}"
    }
}
