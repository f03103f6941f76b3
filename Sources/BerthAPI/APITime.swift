import Foundation

/// metav1.Time and metav1.MicroTime text (RFC 3339, UTC). Written by hand with gmtime_r/timegm:
/// Foundation's ISO8601DateFormatter builds an ICU formatter per instance, which cost a quarter of the
/// control plane's CPU when every create and status update stamped a time.
public enum APITime {
    /// RFC 3339 with seconds (metav1.Time), e.g. 2026-11-29T05:35:44Z.
    public static func string(_ d: Date = Date()) -> String {
        format(Int(d.timeIntervalSince1970.rounded(.down)), micros: nil)
    }
    /// RFC 3339 with exactly six fractional digits (metav1.MicroTime; client-go refuses fewer).
    public static func micro(_ d: Date = Date()) -> String {
        let t = d.timeIntervalSince1970
        let whole = t.rounded(.down)
        return format(Int(whole), micros: min(Int(((t - whole) * 1_000_000).rounded(.down)), 999_999))
    }

    static func format(_ seconds: Int, micros: Int?) -> String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        var out = [UInt8]()
        out.reserveCapacity(27)
        func put(_ v: Int32, _ digits: Int) {
            var buf = [UInt8](repeating: 0x30, count: digits)
            var x = Int(v)
            for i in stride(from: digits - 1, through: 0, by: -1) { buf[i] = UInt8(0x30 + x % 10); x /= 10 }
            out += buf
        }
        put(tm.tm_year + 1900, 4); out.append(0x2d); put(tm.tm_mon + 1, 2); out.append(0x2d); put(tm.tm_mday, 2)
        out.append(0x54); put(tm.tm_hour, 2); out.append(0x3a); put(tm.tm_min, 2); out.append(0x3a); put(tm.tm_sec, 2)
        if let micros { out.append(0x2e); put(Int32(micros), 6) }
        out.append(0x5a)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses RFC 3339 (any fractional digits, Z or ±hh:mm offset); nil when malformed.
    public static func parse(_ s: String?) -> Date? {
        guard let s else { return nil }
        let b = Array(s.utf8)
        guard b.count >= 20 else { return nil }
        func num(_ from: Int, _ n: Int) -> Int32? {
            var v: Int32 = 0
            for i in from..<from + n {
                guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int32(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), b[4] == 0x2d, let mo = num(5, 2), b[7] == 0x2d, let d = num(8, 2),
            b[10] == 0x54 || b[10] == 0x74,
            let h = num(11, 2), b[13] == 0x3a, let mi = num(14, 2), b[16] == 0x3a, let sec = num(17, 2)
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count && b[i] == 0x2e {
            i += 1
            var scale = 0.1
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale; scale /= 10; i += 1
            }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5a || b[i] == 0x7a {
            i += 1
        } else if b[i] == 0x2b || b[i] == 0x2d {
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3a, let om = num(i + 4, 2) else { return nil }
            offset = (Int(oh) * 3600 + Int(om) * 60) * (b[i] == 0x2d ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var tm = tm()
        tm.tm_year = y - 1900; tm.tm_mon = mo - 1; tm.tm_mday = d; tm.tm_hour = h; tm.tm_min = mi; tm.tm_sec = sec
        let t = timegm(&tm)
        return Date(timeIntervalSince1970: Double(t - offset) + fraction)
    }
}

/// Conditions in a JSON status (`status.conditions`), as every controller writes them.
public enum StatusConditions {
    /// Sets the condition `type`, keeping its lastTransitionTime when its status does not change, and
    /// leaving the list as it was when nothing changes at all (so an unchanged status is not written).
    public static func set(_ status: inout JSON, _ type: String, _ on: Bool, _ reason: String, _ message: String) {
        var conditions = status["conditions"].array ?? []
        let value: JSON = on ? "True" : "False"
        var time: JSON = .string(APITime.string())
        if let i = conditions.firstIndex(where: { $0["type"].string == type }) {
            let old = conditions[i]
            if old["status"] == value && old["reason"].string == reason && old["message"].string == message { return }
            if old["status"] == value { time = old["lastTransitionTime"] }
            conditions.remove(at: i)
            conditions.insert(Self.condition(type, value, reason, message, time), at: i)
        } else {
            conditions.append(Self.condition(type, value, reason, message, time))
        }
        status["conditions"] = .array(conditions)
    }

    static func condition(_ type: String, _ value: JSON, _ reason: String, _ message: String, _ time: JSON) -> JSON {
        [
            "type": .string(type), "status": value, "reason": .string(reason), "message": .string(message),
            "lastTransitionTime": time,
        ]
    }
}
