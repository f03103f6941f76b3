import BerthKube
import Foundation

// The current time in the API's two timestamp types (BerthKube itself stays free of Foundation).
extension MetaV1.Time {
    /// Now, to the second (what metav1.Time carries).
    public static func now() -> MetaV1.Time { MetaV1.Time(secondsSince1970: Int64(Date().timeIntervalSince1970)) }

    public var date: Date { Date(timeIntervalSince1970: TimeInterval(secondsSince1970)) }
}

extension MetaV1.MicroTime {
    /// Now, to the microsecond (Lease renewals and Events).
    public static func now() -> MetaV1.MicroTime {
        MetaV1.MicroTime(microsecondsSince1970: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()))
    }
}
