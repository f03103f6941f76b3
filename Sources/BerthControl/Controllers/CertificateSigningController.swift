import BerthAPI
import BerthKube
import Foundation
import Logging

/// kube-controller-manager's csrsigning controllers for the three built-in signers that issue from the
/// cluster CA: an approved, not yet issued, not failed request for one of them gets its certificate in
/// `status.certificate`; one that breaks its signer's rules gets a Failed condition
/// (SignerValidationFailure) instead and is never issued. Requests for any other signer
/// (kubernetes.io/legacy-unknown included, which the v1 API refuses anyway) are left to whoever serves it.
struct CertificateSigningController: ControlLoop {
    typealias CSR = CertificatesV1.CertificateSigningRequest

    let name = "csrsigning"
    let client: any KubeClient
    let requests: Informer<CSR>
    let authority: CertificateAuthority?
    let longest: TimeInterval
    let queue = WorkQueue(name: "csrsigning")
    let logger: Logger

    /// The signers served here and what each demands of a request.
    enum Signer: String, CaseIterable {
        case apiServerClient = "kubernetes.io/kube-apiserver-client"
        case kubeletClient = "kubernetes.io/kube-apiserver-client-kubelet"
        case kubeletServing = "kubernetes.io/kubelet-serving"

        /// Why `request` may not have a certificate from this signer; nil: it may.
        func problem(_ request: CertificateRequest, usages: [String]) -> String? {
            switch self {
            case .apiServerClient: KubeletCertificateProfile.apiServerClientProblem(usages: usages)
            case .kubeletClient: KubeletCertificateProfile.clientProblem(request, usages: usages)
            case .kubeletServing: KubeletCertificateProfile.servingProblem(request, usages: usages)
            }
        }
    }

    /// The shortest certificate issued, whatever is asked: twice the backdate, so none starts expired.
    static let shortest: TimeInterval = 600

    init(_ ctx: ControllerContext) {
        client = ctx.client("certificate-controller")
        requests = ctx.informers.informer(CSR.self)
        authority = ctx.facts.certificateAuthority
        longest = TimeInterval(ctx.config.clusterSigningDuration.components.seconds)
        logger = ctx.logger
        let queue = self.queue
        requests.onChange { event in
            if case .deleted = event { return }
            let csr = event.object
            guard csr.isApproved, !csr.isIssued, !csr.hasFailed, let name = csr.metadata.name else { return }
            Task { await queue.add(name) }
        }
    }

    func run() async {
        guard authority != nil else { return }
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("csr signing failed", metadata: ["csr": "\(key)", "error": "\(error)"])
            })
    }

    /// What a request for `expirationSeconds` gets: the request, within [10 minutes, the signing duration].
    static func lifetime(expirationSeconds: Int32?, longest: TimeInterval) -> TimeInterval {
        guard let seconds = expirationSeconds else { return longest }
        return min(max(TimeInterval(seconds), shortest), longest)
    }

    func sync(_ name: String) async throws {
        guard let authority, var csr = requests.get(name), csr.isApproved, !csr.isIssued, !csr.hasFailed,
            let signer = Signer(rawValue: csr.spec.signerName)
        else { return }
        // Validation let only parsable requests in; one that is not is nothing a retry could sign.
        guard let request = try? CertificateRequest(pem: csr.spec.request) else { return }
        if let problem = signer.problem(request, usages: csr.usageNames) {
            csr.status.conditions.append(
                CSR.trueCondition(.certificateFailed, reason: "SignerValidationFailure", message: problem))
            do { _ = try await client.updateStatus(csr) } catch let error as APIError where error.code == 409 {
                // A newer version is on its way through the informer.
            }
            return
        }
        let lifetime = Self.lifetime(expirationSeconds: csr.spec.expirationSeconds, longest: longest)
        let pem = try authority.issue(request, usages: csr.usageNames, ttl: lifetime)
        csr.status.certificate = Array(pem.utf8)
        do { _ = try await client.updateStatus(csr) } catch let error as APIError where error.code == 409 {}
    }
}
