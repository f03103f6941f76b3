import Foundation

/// admissionregistration.k8s.io/v1 Validating- and MutatingWebhookConfiguration (upstream
/// pkg/apis/admissionregistration/v1 defaults and pkg/apis/admissionregistration/validation): webhooks
/// the API server calls on writes that match their rules (Admission/).
struct WebhookConfigurationStrategy: ResourceStrategy {
    var mutating: Bool

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        guard var webhooks = obj["webhooks"].array else { return }
        for i in webhooks.indices {
            var w = webhooks[i]
            if w["failurePolicy"].isNull { w["failurePolicy"] = "Fail" }
            if w["matchPolicy"].isNull { w["matchPolicy"] = "Equivalent" }
            if w["namespaceSelector"].isNull { w["namespaceSelector"] = [:] }
            if w["objectSelector"].isNull { w["objectSelector"] = [:] }
            if w["timeoutSeconds"].isNull { w["timeoutSeconds"] = 10 }
            if mutating && w["reinvocationPolicy"].isNull { w["reinvocationPolicy"] = "Never" }
            if w["clientConfig"]["service"].object != nil && w["clientConfig"]["service"]["port"].isNull {
                w["clientConfig"]["service"]["port"] = 443
            }
            if var rules = w["rules"].array {
                for j in rules.indices where rules[j]["scope"].isNull { rules[j]["scope"] = "*" }
                w["rules"] = .array(rules)
            }
            webhooks[i] = w
        }
        obj["webhooks"] = .array(webhooks)
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        var names = Set<String>()
        for (i, w) in (obj["webhooks"].array ?? []).enumerated() {
            let path = "webhooks[\(i)]"
            let name = w["name"].string ?? ""
            errs += Self.fullyQualifiedName(name, "\(path).name")
            if !name.isEmpty && !names.insert(name).inserted {
                errs.append(.init("\(path).name", "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
            }
            for (j, rule) in (w["rules"].array ?? []).enumerated() {
                errs += AdmissionRule.validate(rule, path: "\(path).rules[\(j)]", allowResourceNames: false)
            }
            errs += FieldChecks.supported(w["failurePolicy"], ["Ignore", "Fail"], "\(path).failurePolicy")
            errs += FieldChecks.supported(w["matchPolicy"], ["Exact", "Equivalent"], "\(path).matchPolicy")
            if w["sideEffects"].isNull {
                errs.append(
                    FieldChecks.required(
                        "\(path).sideEffects", "must specify one of \"None\", \"NoneOnDryRun\""))
            } else {
                errs += FieldChecks.supported(w["sideEffects"], ["None", "NoneOnDryRun"], "\(path).sideEffects")
            }
            errs += Self.reviewVersions(w["admissionReviewVersions"], "\(path).admissionReviewVersions")
            if let t = w["timeoutSeconds"].int, !(1...30).contains(t) {
                errs.append(
                    .init(
                        "\(path).timeoutSeconds", "FieldValueInvalid",
                        "Invalid value: \(t): the timeout value must be between 1 and 30 seconds"))
            }
            errs += FieldChecks.labelSelector(w["namespaceSelector"], "\(path).namespaceSelector")
            errs += FieldChecks.labelSelector(w["objectSelector"], "\(path).objectSelector")
            errs += Self.clientConfig(w["clientConfig"], "\(path).clientConfig")
            errs += Self.matchConditions(w["matchConditions"], "\(path).matchConditions")
            if mutating {
                errs += FieldChecks.supported(
                    w["reinvocationPolicy"], ["Never", "IfNeeded"], "\(path).reinvocationPolicy")
            }
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, Tables.Column(name: "Webhooks", type: "integer"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .int(Int64(obj["webhooks"].array?.count ?? 0)), Tables.ageCell(obj)]
    }

    /// IsFullyQualifiedName: a DNS subdomain of at least three segments.
    static func fullyQualifiedName(_ name: String, _ path: String) -> [APIError.Cause] {
        if name.isEmpty { return [FieldChecks.required(path)] }
        if !Validation.isDNS1123Subdomain(name) {
            return [
                FieldChecks.invalid(
                    path, .string(name),
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                )
            ]
        }
        if name.split(separator: ".").count < 3 {
            return [
                FieldChecks.invalid(
                    path, .string(name), "should be a domain with at least three segments separated by dots")
            ]
        }
        return []
    }

    static func reviewVersions(_ versions: JSON, _ path: String) -> [APIError.Cause] {
        let list = (versions.array ?? []).compactMap(\.string)
        if list.isEmpty {
            return [
                FieldChecks.required(
                    path, "must specify one of v1, v1beta1")
            ]
        }
        var errs: [APIError.Cause] = []
        var seen = Set<String>()
        for (i, v) in list.enumerated() where !seen.insert(v).inserted {
            errs.append(.init("\(path)[\(i)]", "FieldValueDuplicate", "Duplicate value: \"\(v)\""))
        }
        if !list.contains("v1") && !list.contains("v1beta1") {
            errs.append(
                .init(
                    path, "FieldValueInvalid",
                    "Invalid value: \(AdmissionRule.goSlice(list)): must include at least one of v1, v1beta1"))
        }
        return errs
    }

    /// ValidateWebhookClientConfig: exactly one of a URL (https, a host, no query, fragment or user) and
    /// a Service (namespace, name, a path from /, a port).
    static func clientConfig(_ c: JSON, _ path: String) -> [APIError.Cause] {
        let url = c["url"].string, service = c["service"]
        switch (url, service.object) {
        case (nil, nil), (.some, .some):
            return [FieldChecks.required(path, "exactly one of url or service is required")]
        case (let u?, nil):
            let at = "\(path).url"
            guard let parts = URLComponents(string: u) else {
                return [FieldChecks.invalid(at, .string(u), "host must be specified")]
            }
            var errs: [APIError.Cause] = []
            if parts.scheme != "https" {
                errs.append(FieldChecks.invalid(at, .string(u), "'https' is the only allowed URL scheme"))
            }
            if (parts.host ?? "").isEmpty { errs.append(FieldChecks.invalid(at, .string(u), "host must be specified")) }
            if parts.user != nil {
                errs.append(FieldChecks.invalid(at, .string(u), "user information is not permitted in the URL"))
            }
            if parts.fragment != nil {
                errs.append(FieldChecks.invalid(at, .string(u), "fragments are not permitted in the URL"))
            }
            if parts.query != nil {
                errs.append(FieldChecks.invalid(at, .string(u), "query parameters are not permitted in the URL"))
            }
            return errs
        case (nil, .some):
            let at = "\(path).service"
            var errs: [APIError.Cause] = []
            if (service["namespace"].string ?? "").isEmpty {
                errs.append(FieldChecks.required("\(at).namespace", "service namespace is required"))
            }
            if (service["name"].string ?? "").isEmpty {
                errs.append(FieldChecks.required("\(at).name", "service name is required"))
            }
            if let p = service["path"].string, !p.hasPrefix("/") {
                errs.append(FieldChecks.invalid("\(at).path", .string(p), "must start with a '/'"))
            }
            if let port = service["port"].int, !(1...65535).contains(port) {
                errs.append(
                    FieldChecks.invalid(
                        "\(at).port", .int(port), "port is not valid: must be between 1 and 65535, inclusive"))
            }
            return errs
        }
    }

    /// Match conditions: at most 64, named uniquely with qualified names, expressions Berth's CEL compiles.
    static func matchConditions(_ list: JSON, _ path: String) -> [APIError.Cause] {
        let items = list.array ?? []
        var errs: [APIError.Cause] = []
        if items.count > 64 {
            errs.append(.init(path, "FieldValueTooMany", "Too many: \(items.count): must have at most 64 items"))
        }
        var names = Set<String>()
        for (i, c) in items.enumerated() {
            let name = c["name"].string ?? ""
            if name.isEmpty {
                errs.append(FieldChecks.required("\(path)[\(i)].name"))
            } else {
                errs += FieldChecks.qualifiedName(name, "\(path)[\(i)].name")
                if !names.insert(name).inserted {
                    errs.append(.init("\(path)[\(i)].name", "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
                }
            }
            errs += compiles(c["expression"], "\(path)[\(i)].expression")
        }
        return errs
    }

    static func compiles(_ expression: JSON, _ path: String) -> [APIError.Cause] {
        guard let text = expression.string, !text.isEmpty else { return [FieldChecks.required(path)] }
        do { try CELRegexLiteralError.check(try CELParser.parse(text)) } catch let error as CELRegexLiteralError {
            return [FieldChecks.invalid(path, .string(text), error.description)]
        } catch {
            return [FieldChecks.invalid(path, .string(text), "compilation failed: ERROR: \(error)")]
        }
        return []
    }
}

/// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy: CEL validations of matching requests,
/// applied where a binding puts them (Admission/ValidatingAdmissionPolicy.swift).
struct ValidatingAdmissionPolicyStrategy: ResourceStrategy {
    static let reasons = ["Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"]

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        guard obj["spec"].object != nil else { return }
        if obj["spec"]["failurePolicy"].isNull { obj["spec"]["failurePolicy"] = "Fail" }
        var match = obj["spec"]["matchConstraints"]
        if match.object != nil {
            if match["matchPolicy"].isNull { match["matchPolicy"] = "Equivalent" }
            if match["namespaceSelector"].isNull { match["namespaceSelector"] = [:] }
            if match["objectSelector"].isNull { match["objectSelector"] = [:] }
            for key in ["resourceRules", "excludeResourceRules"] {
                if var rules = match[key].array {
                    for j in rules.indices where rules[j]["scope"].isNull { rules[j]["scope"] = "*" }
                    match[key] = .array(rules)
                }
            }
            obj["spec"]["matchConstraints"] = match
        }
    }

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = .null }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        if spec["paramKind"].object != nil {
            if (spec["paramKind"]["kind"].string ?? "").isEmpty {
                errs.append(FieldChecks.required("spec.paramKind.kind"))
            }
            if (spec["paramKind"]["apiVersion"].string ?? "").isEmpty {
                errs.append(FieldChecks.required("spec.paramKind.apiVersion"))
            }
        }
        let match = spec["matchConstraints"]
        if match.object == nil {
            errs.append(FieldChecks.required("spec.matchConstraints"))
        } else {
            errs += Self.matchResources(match, "spec.matchConstraints", policy: true)
        }
        let validations = spec["validations"].array ?? []
        if validations.isEmpty && (spec["auditAnnotations"].array ?? []).isEmpty {
            errs.append(
                FieldChecks.required(
                    "spec.validations", "validations or auditAnnotations must contain at least one item"))
        }
        for (i, v) in validations.enumerated() {
            let path = "spec.validations[\(i)]"
            errs += WebhookConfigurationStrategy.compiles(v["expression"], "\(path).expression")
            if let m = v["message"].string, m.contains("\n") {
                errs.append(FieldChecks.invalid("\(path).message", .string(m), "message must not contain line breaks"))
            }
            if !v["messageExpression"].isNull {
                errs += WebhookConfigurationStrategy.compiles(v["messageExpression"], "\(path).messageExpression")
            }
            if !v["reason"].isNull { errs += FieldChecks.supported(v["reason"], Self.reasons, "\(path).reason") }
        }
        var variableNames = Set<String>()
        for (i, v) in (spec["variables"].array ?? []).enumerated() {
            let name = v["name"].string ?? ""
            if name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) == nil {
                errs.append(
                    FieldChecks.invalid(
                        "spec.variables[\(i)].name", .string(name), "name is not a valid CEL identifier"))
            } else if !variableNames.insert(name).inserted {
                errs.append(.init("spec.variables[\(i)].name", "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
            }
            errs += WebhookConfigurationStrategy.compiles(v["expression"], "spec.variables[\(i)].expression")
        }
        errs += WebhookConfigurationStrategy.matchConditions(spec["matchConditions"], "spec.matchConditions")
        errs += FieldChecks.supported(spec["failurePolicy"], ["Ignore", "Fail"], "spec.failurePolicy")
        return errs
    }

    /// MatchResources of a policy (resource rules required) or a binding (optional).
    static func matchResources(_ match: JSON, _ path: String, policy: Bool) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let rules = match["resourceRules"].array ?? []
        if policy && rules.isEmpty { errs.append(FieldChecks.required("\(path).resourceRules")) }
        for (j, rule) in rules.enumerated() {
            errs += AdmissionRule.validate(rule, path: "\(path).resourceRules[\(j)]", allowResourceNames: true)
        }
        for (j, rule) in (match["excludeResourceRules"].array ?? []).enumerated() {
            errs += AdmissionRule.validate(rule, path: "\(path).excludeResourceRules[\(j)]", allowResourceNames: true)
        }
        errs += FieldChecks.labelSelector(match["namespaceSelector"], "\(path).namespaceSelector")
        errs += FieldChecks.labelSelector(match["objectSelector"], "\(path).objectSelector")
        if !match["matchPolicy"].isNull {
            errs += FieldChecks.supported(match["matchPolicy"], ["Exact", "Equivalent"], "\(path).matchPolicy")
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, Tables.Column(name: "Validations", type: "integer"),
            Tables.Column(name: "ParamKind"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let kind = obj["spec"]["paramKind"]
        let paramKind =
            kind.object == nil ? "<unset>" : "\(kind["apiVersion"].string ?? "")/\(kind["kind"].string ?? "")"
        return [
            Tables.nameCell(obj), .int(Int64(obj["spec"]["validations"].array?.count ?? 0)), .string(paramKind),
            Tables.ageCell(obj),
        ]
    }
}

/// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding: which policy applies where, with
/// which parameters, and what its violations do.
struct ValidatingAdmissionPolicyBindingStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        var match = obj["spec"]["matchResources"]
        guard match.object != nil else { return }
        if match["matchPolicy"].isNull { match["matchPolicy"] = "Equivalent" }
        if match["namespaceSelector"].isNull { match["namespaceSelector"] = [:] }
        if match["objectSelector"].isNull { match["objectSelector"] = [:] }
        obj["spec"]["matchResources"] = match
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        if (spec["policyName"].string ?? "").isEmpty { errs.append(FieldChecks.required("spec.policyName")) }
        let actions = (spec["validationActions"].array ?? []).compactMap(\.string)
        if actions.isEmpty {
            errs.append(FieldChecks.required("spec.validationActions", "at least one validation action is required"))
        }
        var seen = Set<String>()
        for (i, action) in actions.enumerated() {
            errs += FieldChecks.supported(.string(action), ["Deny", "Warn", "Audit"], "spec.validationActions[\(i)]")
            if !seen.insert(action).inserted {
                errs.append(
                    .init("spec.validationActions[\(i)]", "FieldValueDuplicate", "Duplicate value: \"\(action)\""))
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            errs.append(
                .init(
                    "spec.validationActions", "FieldValueInvalid",
                    "Invalid value: \(AdmissionRule.goSlice(actions)): must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"
                ))
        }
        let ref = spec["paramRef"]
        if ref.object != nil {
            let named = !(ref["name"].string ?? "").isEmpty, selected = ref["selector"].object != nil
            if named == selected {
                errs.append(FieldChecks.required("spec.paramRef", "one of name or selector must be specified"))
            }
            if selected { errs += FieldChecks.labelSelector(ref["selector"], "spec.paramRef.selector") }
            if ref["parameterNotFoundAction"].isNull {
                errs.append(FieldChecks.required("spec.paramRef.parameterNotFoundAction"))
            } else {
                errs += FieldChecks.supported(
                    ref["parameterNotFoundAction"], ["Allow", "Deny"], "spec.paramRef.parameterNotFoundAction")
            }
        }
        if spec["matchResources"].object != nil {
            errs += ValidatingAdmissionPolicyStrategy.matchResources(
                spec["matchResources"], "spec.matchResources", policy: false)
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, Tables.Column(name: "PolicyName"), Tables.Column(name: "ParamRef"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let ref = obj["spec"]["paramRef"]
        var param = "<unset>"
        if let name = ref["name"].string, !name.isEmpty {
            param = "\(ref["namespace"].string ?? "*")/\(name)"
        } else if ref["selector"].object != nil {
            param = LabelSelector(object: ref["selector"]).text
        }
        return [
            Tables.nameCell(obj), .string(obj["spec"]["policyName"].string ?? ""), .string(param), Tables.ageCell(obj),
        ]
    }
}
