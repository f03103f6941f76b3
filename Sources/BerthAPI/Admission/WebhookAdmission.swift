import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Why a webhook could not be used (unreachable, timed out, a malformed answer): under failurePolicy
/// Fail the request is refused with it, under Ignore the webhook is skipped.
struct WebhookCallFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension Handler {
    /// The mutating admission webhooks, in order, each seeing the object as the ones before left it; a
    /// webhook with reinvocationPolicy IfNeeded is called once more when a later one changed the object.
    /// `a.object` is the result.
    /// `variables`: the request's CEL variables (`AdmissionAttributes.celVariables`), built once per request.
    func admitByMutatingWebhooks(
        _ a: inout AdmissionAttributes, _ webhooks: [AdmissionWebhook], variables: [String: JSON],
        namespace: NamespaceFacts
    ) async throws {
        var matched: [AdmissionWebhook] = []
        for w in webhooks where try await applies(w, a, variables: variables, namespace: namespace) {
            matched.append(w)
        }
        guard !matched.isEmpty else { return }
        // Whether the object changed after each webhook's call (only IfNeeded ones are reinvoked).
        var changedSince = [Bool](repeating: false, count: matched.count)
        for (i, w) in matched.enumerated() {
            if try await mutate(w, &a) {
                for j in 0..<i { changedSince[j] = true }
            }
        }
        for (i, w) in matched.enumerated() where w.reinvoke && changedSince[i] {
            _ = try await mutate(w, &a)
        }
    }

    /// The validating admission webhooks, called at once (upstream calls them in parallel); the first
    /// refusal in configuration order is the answer.
    func admitByValidatingWebhooks(
        _ a: AdmissionAttributes, _ webhooks: [AdmissionWebhook], variables: [String: JSON],
        namespace: NamespaceFacts
    ) async throws {
        var matched: [AdmissionWebhook] = []
        for w in webhooks where try await applies(w, a, variables: variables, namespace: namespace) {
            matched.append(w)
        }
        guard !matched.isEmpty else { return }
        let outcomes = await withTaskGroup(of: (Int, Error?).self) { group in
            for (i, w) in matched.enumerated() {
                group.addTask {
                    do {
                        _ = try await self.review(w, a)
                        return (i, nil)
                    } catch { return (i, error) }
                }
            }
            var out = [Error?](repeating: nil, count: matched.count)
            for await (i, e) in group { out[i] = e }
            return out
        }
        if let first = outcomes.compactMap({ $0 }).first { throw first }
    }

    /// Whether `w` is called for the request: its rules, object and namespace selectors, then its match
    /// conditions (an error in one refuses the request under failurePolicy Fail).
    private func applies(
        _ w: AdmissionWebhook, _ a: AdmissionAttributes, variables: [String: JSON], namespace: NamespaceFacts
    ) async throws -> Bool {
        guard await w.match.matches(a, namespace: namespace) else { return false }
        switch w.matchConditions.evaluate(variables) {
        case .matches: return true
        case .excluded: return false
        case .failed(let condition, let reason):
            guard w.failClosed else { return false }
            throw APIError.internalError(
                "failed calling webhook \"\(w.name)\": failed to evaluate match condition \"\(condition)\": \(reason)")
        }
    }

    /// One mutating webhook's call; true when it changed the object.
    private func mutate(_ w: AdmissionWebhook, _ a: inout AdmissionAttributes) async throws -> Bool {
        guard let response = try await review(w, a), let patchText = response["patch"].string else { return false }
        guard let object = a.object else { return false }
        let patchType = response["patchType"].string ?? ""
        guard patchType == "JSONPatch" else {
            try unusable(
                w, WebhookCallFailure("received invalid webhook response: unsupported patch type \"\(patchType)\""))
            return false
        }
        guard let bytes = Data(base64Encoded: patchText), let ops = try? JSON.parse([UInt8](bytes)) else {
            try unusable(w, WebhookCallFailure("received invalid webhook response: the patch is not base64 JSON"))
            return false
        }
        var patched: JSON
        do { patched = try Patch.jsonPatch(object, ops) } catch {
            throw APIError.internalError("JSON patch of admission webhook \"\(w.name)\" could not be applied: \(error)")
        }
        guard patched.object != nil else {
            throw APIError.internalError("admission webhook \"\(w.name)\" patched the object into a non-object")
        }
        // What identifies the object stays the server's (upstream decodes the patched object into the
        // request's kind; a webhook cannot rename or move it).
        for key in ["apiVersion", "kind"] { patched[key] = object[key] }
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"] {
            patched["metadata"][key] = object["metadata"][key]
        }
        if patched == object { return false }
        a.object = patched
        return true
    }

    /// Sends the AdmissionReview and returns the webhook's `response` when it allowed the request; nil
    /// when it could not be called and failurePolicy is Ignore. A refusal is thrown as upstream words it.
    private func review(_ w: AdmissionWebhook, _ a: AdmissionAttributes) async throws -> JSON? {
        if a.dryRun && !w.dryRunSafe {
            throw APIError.badRequest("admission webhook \"\(w.name)\" does not support dry run")
        }
        let uid = UUID().uuidString.lowercased()
        let answer: JSON
        do {
            answer = try await post(
                w,
                review: [
                    "apiVersion": .string("admission.k8s.io/\(w.reviewVersion)"), "kind": "AdmissionReview",
                    "request": a.request(uid: uid),
                ])
        } catch let failure as WebhookCallFailure {
            try unusable(w, failure)
            return nil
        }
        let response = answer["response"]
        do {
            guard answer["kind"].string == "AdmissionReview" else {
                throw WebhookCallFailure(
                    "received invalid webhook response: expected kind AdmissionReview, got \(answer["kind"].text)")
            }
            guard answer["apiVersion"].string == "admission.k8s.io/\(w.reviewVersion)" else {
                throw WebhookCallFailure(
                    "received invalid webhook response: expected webhook response of admission.k8s.io/\(w.reviewVersion), AdmissionReview, got \(answer["apiVersion"].string ?? "")"
                )
            }
            guard response.object != nil else {
                throw WebhookCallFailure("received invalid webhook response: webhook response was absent")
            }
            guard response["uid"].string == uid else {
                throw WebhookCallFailure(
                    "received invalid webhook response: expected response.uid=\"\(uid)\", got \"\(response["uid"].string ?? "")\""
                )
            }
        } catch let failure as WebhookCallFailure {
            try unusable(w, failure)
            return nil
        }
        for warning in response["warnings"].array ?? [] {
            if let text = warning.string, !text.isEmpty { a.warnings?.add(text) }
        }
        guard response["allowed"].bool == true else { throw Self.webhookDenial(w.name, response["status"]) }
        return response
    }

    /// A webhook that could not be used: refused under failurePolicy Fail (upstream's words), logged
    /// under Ignore, where the caller goes on as if the webhook had not been called.
    private func unusable(_ w: AdmissionWebhook, _ failure: WebhookCallFailure) throws {
        guard w.failClosed else {
            server.logger.warning(
                "admission webhook failed open",
                metadata: ["webhook": "\(w.name)", "error": "\(failure.description)"])
            return
        }
        throw APIError.internalError("failed calling webhook \"\(w.name)\": \(failure.description)")
    }

    /// Upstream's webhookerrors.ToStatusErr: the webhook's own Status, at least a 400, its message
    /// prefixed with who denied.
    static func webhookDenial(_ name: String, _ result: JSON) -> APIError {
        let deniedBy = "admission webhook \"\(name)\" denied the request"
        var code = Int(result["code"].int ?? 0)
        if code < 400 { code = 400 }
        let message =
            if let m = result["message"].string, !m.isEmpty {
                "\(deniedBy): \(m)"
            } else if let r = result["reason"].string, !r.isEmpty {
                "\(deniedBy): \(r)"
            } else {
                "\(deniedBy) without explanation"
            }
        return APIError(code: code, reason: result["reason"].string ?? "", message: message, details: result["details"])
    }

    /// POSTs the review to the webhook within its timeout and parses the answer.
    private func post(_ w: AdmissionWebhook, review: JSON) async throws -> JSON {
        let (url, host, address) = try await target(w)
        let shown = "Post \"\(w.displayURL)\""
        let client: HTTPClient
        do {
            client = try server.webhookClients.client(caBundle: w.caBundle, host: host, address: address)
        } catch { throw WebhookCallFailure("failed to call webhook: \(error)") }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: review.serialized()))
        let deadline = NIODeadline.now() + .nanoseconds(Int64(w.timeout.components.seconds) * 1_000_000_000)
        let body: [UInt8]
        let status: HTTPResponseStatus
        do {
            let response = try await client.execute(request, deadline: deadline)
            status = response.status
            body = Array(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            throw WebhookCallFailure("failed to call webhook: \(shown): \(Self.describe(error, url: url))")
        }
        guard status.code / 100 == 2 else {
            let text = String(decoding: body.prefix(1024), as: UTF8.self)
            throw WebhookCallFailure(
                "failed to call webhook: an error on the server (\"\(text)\") has prevented the request from succeeding"
            )
        }
        do { return try JSON.parse(body) } catch {
            throw WebhookCallFailure("received invalid webhook response: \(error)")
        }
    }

    /// Where a webhook is called: its URL, or for a Service the name upstream dials
    /// (`<name>.<namespace>.svc`) resolved to a ready endpoint of the Service (else its cluster IP), or for
    /// an ExternalName Service to its external name at the webhook's port, as kube-apiserver's default
    /// (cluster IP) resolver does. The certificate is checked for `<name>.<namespace>.svc` either way.
    private func target(_ w: AdmissionWebhook) async throws -> (url: String, host: String, address: String?) {
        let url = w.displayURL
        switch w.endpoint {
        case .url(let u):
            return (url, URLComponents(string: u)?.host ?? "", nil)
        case .service(let namespace, let name, let path, let port):
            let host = "\(name).\(namespace).svc"
            guard let service = try await storedObject(Registry.services, namespace: namespace, name: name) else {
                throw WebhookCallFailure("failed to call webhook: service \"\(name)\" not found")
            }
            if service["spec"]["type"].string == "ExternalName" {
                guard let external = service["spec"]["externalName"].string, !external.isEmpty else {
                    throw WebhookCallFailure(
                        "failed to call webhook: service \"\(namespace)/\(name)\" has no externalName")
                }
                return (url, host, external.hasSuffix(".") ? String(external.dropLast()) : external)
            }
            let ports = service["spec"]["ports"].array ?? []
            guard let servicePort = ports.first(where: { $0["port"].int == Int64(port) }) else {
                throw WebhookCallFailure("failed to call webhook: service \"\(namespace)/\(name)\" has no port \(port)")
            }
            let query = String(url.drop { $0 != "?" })
            let slices = try await storedObjects(Registry.endpointSlices, namespace: namespace).map(\.object).filter {
                $0["metadata"]["labels"]["kubernetes.io/service-name"].string == name
            }
            for slice in slices {
                guard
                    let slicePort = (slice["ports"].array ?? []).first(where: {
                        ($0["name"].string ?? "") == (servicePort["name"].string ?? "")
                    })?["port"].int
                else { continue }
                for endpoint in slice["endpoints"].array ?? [] where endpoint["conditions"]["ready"].bool != false {
                    if let address = endpoint["addresses"][0].string {
                        return ("https://\(host):\(slicePort)\(path)\(query)", host, address)
                    }
                }
            }
            guard let clusterIP = service["spec"]["clusterIP"].string, !clusterIP.isEmpty, clusterIP != "None" else {
                throw WebhookCallFailure("failed to call webhook: service \"\(namespace)/\(name)\" has no endpoints")
            }
            return (url, host, clusterIP)
        }
    }

    /// A transport failure in the words Go's HTTP client uses (what kubectl users search for).
    static func describe(_ error: Error, url: String) -> String {
        let text = String(describing: error)
        if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
            return "context deadline exceeded"
        }
        if text.contains("connection refused") || text.contains("Connection refused") || text.contains("ECONNREFUSED")
            || text.contains("errno: 111")
        {
            let u = URLComponents(string: url)
            return "dial tcp \(u?.host ?? ""):\(u?.port ?? 443): connect: connection refused"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        }
        if text.contains("handshake") { return "remote error: tls: \(text)" }
        return text
    }
}
