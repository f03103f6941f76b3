import BerthAPI
import BerthKube
import Foundation
import Logging

/// kube-controller-manager's csrapproving controller: approves kubelet client certificate requests
/// (signer kube-apiserver-client-kubelet, CN system:node:NAME, O system:nodes, client usages) when a
/// SubjectAccessReview says their requester may create `certificatesigningrequests/selfnodeclient`
/// (renewing its own node's certificate: the CN is the requester) or `…/nodeclient` (any node's, as a
/// bootstrap token may). Anything else is left for a person or another approver; nothing is denied.
struct CertificateApprovingController: ControlLoop {
    typealias CSR = CertificatesV1.CertificateSigningRequest

    let name = "csrapproving"
    let client: any KubeClient
    let requests: Informer<CSR>
    let queue = WorkQueue(name: "csrapproving")
    let logger: Logger

    /// One kind of request this approver knows, and what its requester must be allowed.
    struct Recognizer: Sendable {
        var subresource: String
        var message: String
        var recognizes: @Sendable (CSR, CertificateRequest) -> Bool
    }

    static let kubeletClientSigner = "kubernetes.io/kube-apiserver-client-kubelet"

    /// Upstream's order: a node renewing its own certificate first.
    static let recognizers = [
        Recognizer(
            subresource: "selfnodeclient",
            message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
            recognizes: { csr, request in csr.spec.username == request.commonName && isNodeClient(csr, request) }),
        Recognizer(
            subresource: "nodeclient", message: "Auto approving kubelet client certificate after SubjectAccessReview.",
            recognizes: isNodeClient),
    ]

    @Sendable static func isNodeClient(_ csr: CSR, _ request: CertificateRequest) -> Bool {
        csr.spec.signerName == kubeletClientSigner
            && KubeletCertificateProfile.clientProblem(request, usages: csr.usageNames) == nil
    }

    init(_ ctx: ControllerContext) {
        client = ctx.client("certificate-controller")
        requests = ctx.informers.informer(CSR.self)
        logger = ctx.logger
        let queue = self.queue
        requests.onChange { event in
            if case .deleted = event { return }
            let csr = event.object
            guard Self.undecided(csr), let name = csr.metadata.name else { return }
            Task { await queue.add(name) }
        }
    }

    static func undecided(_ csr: CSR) -> Bool {
        !csr.isIssued && csr.condition(.certificateApproved) == nil && !csr.isDenied
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("csr approval failed", metadata: ["csr": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ name: String) async throws {
        guard let csr = requests.get(name), Self.undecided(csr),
            let request = try? CertificateRequest(pem: csr.spec.request)
        else { return }
        var tried: [String] = []
        for recognizer in Self.recognizers where recognizer.recognizes(csr, request) {
            tried.append(recognizer.subresource)
            guard try await requesterMay(csr, createSubresource: recognizer.subresource) else { continue }
            var conditions = csr.status.conditions
            conditions.append(
                CSR.trueCondition(.certificateApproved, reason: "AutoApproved", message: recognizer.message))
            let patch: JSON = [
                "metadata": ["resourceVersion": .string(csr.metadata.resourceVersion ?? "")],
                "status": ["conditions": .array(conditions.map { $0.kubeJSON() })],
            ]
            do {
                try await client.mergePatch(
                    Registry.certificateSigningRequests, namespace: nil, name: name, patch, subresource: "approval")
            } catch let error as APIError where error.code == 409 {
                // Changed meanwhile: the informer brings it back if it is still undecided.
            }
            return
        }
        // Upstream's IgnorableError: worth a log line, not a retry (a new binding is no event here).
        if !tried.isEmpty {
            logger.debug(
                "recognized csr as \(tried) but subject access review was not approved", metadata: ["csr": "\(name)"])
        }
    }

    /// Whether the request's author (as the API server recorded it in the spec) may create the subresource.
    func requesterMay(_ csr: CSR, createSubresource subresource: String) async throws -> Bool {
        var review = AuthorizationV1.SubjectAccessReview()
        review.spec.user = csr.spec.username
        review.spec.uid = csr.spec.uid
        review.spec.groups = csr.spec.groups
        review.spec.extra = csr.spec.extra
        var attributes = AuthorizationV1.ResourceAttributes()
        attributes.group = "certificates.k8s.io"
        attributes.version = "*"
        attributes.resource = "certificatesigningrequests"
        attributes.subresource = subresource
        attributes.verb = "create"
        review.spec.resourceAttributes = attributes
        return try await client.subjectAccessReview(review).status.allowed
    }
}
