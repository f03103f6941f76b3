import BerthAPI
import BerthKube
import Foundation

/// Where a CertificateSigningRequest stands, as the signer, approver and cleaner read its conditions
/// (upstream's certificates.GetCertApprovalCondition and HasTrueCondition).
extension CertificatesV1.CertificateSigningRequest {
    typealias Condition = CertificatesV1.CertificateSigningRequestCondition

    func condition(_ type: CertificatesV1.RequestConditionType) -> Condition? {
        status.conditions.first { $0.type == type }
    }
    /// Approved and not denied: what a signer may issue for.
    var isApproved: Bool { condition(.certificateApproved) != nil && condition(.certificateDenied) == nil }
    var isDenied: Bool { condition(.certificateDenied) != nil }
    var hasFailed: Bool { status.conditions.contains { $0.type == .certificateFailed && $0.status.rawValue == "True" } }
    var isIssued: Bool { !status.certificate.isEmpty }
    var usageNames: [String] { spec.usages.map(\.rawValue) }

    /// A True condition stamped now, as the controllers append them.
    static func trueCondition(_ type: CertificatesV1.RequestConditionType, reason: String, message: String)
        -> Condition
    {
        var condition = Condition()
        condition.type = type
        condition.status = .init(rawValue: "True")
        condition.reason = reason
        condition.message = message
        condition.lastUpdateTime = MetaV1.Time(secondsSince1970: Int64(Date().timeIntervalSince1970))
        return condition
    }
}
