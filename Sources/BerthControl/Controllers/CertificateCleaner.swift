import BerthAPI
import BerthKube
import Foundation
import Logging

/// kube-controller-manager's csrcleaner: removes certificate signing requests once nobody needs them —
/// issued ones an hour after approval (or once their certificate has expired), denied and failed ones an
/// hour after that condition, and ones still undecided after a day. It looks every
/// ``ControlPlaneConfig/certificateCleanupInterval`` (hourly) rather than on each change: deadlines, not
/// events, decide.
struct CertificateCleaner: ControlLoop {
    typealias CSR = CertificatesV1.CertificateSigningRequest

    let name = "csrcleaner"
    let client: any KubeClient
    let requests: Informer<CSR>
    let interval: Duration
    let logger: Logger

    static let approvedExpiration: TimeInterval = 3600
    static let deniedExpiration: TimeInterval = 3600
    static let pendingExpiration: TimeInterval = 24 * 3600

    init(_ ctx: ControllerContext) {
        client = ctx.client("certificate-controller")
        requests = ctx.informers.informer(CSR.self)
        interval = ctx.config.certificateCleanupInterval
        logger = ctx.logger
    }

    func run() async {
        while !Task.isCancelled {
            await sweep(now: Date())
            try? await Task.sleep(for: interval)
        }
    }

    func sweep(now: Date) async {
        for csr in requests.list() where Self.isDone(csr, now: now) {
            guard let name = csr.metadata.name else { continue }
            do {
                try await client.delete(
                    Registry.certificateSigningRequests, namespace: nil, name: name, gracePeriod: nil,
                    uid: csr.metadata.uid, propagation: nil)
            } catch let error as APIError where error.code == 404 || error.code == 409 {
            } catch {
                logger.debug("csr cleanup failed", metadata: ["csr": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// Whether `csr` has outlived its use at `now`.
    static func isDone(_ csr: CSR, now: Date) -> Bool {
        func older(_ time: MetaV1.Time?, than age: TimeInterval) -> Bool {
            guard let time, time != .zero else { return false }
            return now.timeIntervalSince(time.date) > age
        }
        let conditions = csr.status.conditions
        if csr.isIssued {
            if conditions.contains(where: {
                $0.type == .certificateApproved && older($0.lastUpdateTime, than: approvedExpiration)
            }) {
                return true
            }
            if let notAfter = IssuedCertificate.notAfter(csr.status.certificate), notAfter < now { return true }
        }
        for condition in conditions
        where condition.type == .certificateDenied || condition.type == .certificateFailed {
            if older(condition.lastUpdateTime, than: deniedExpiration) { return true }
        }
        return conditions.isEmpty && older(csr.metadata.creationTimestamp, than: pendingExpiration)
    }
}
