@testable import BerthAPI
import Testing

/// Kubernetes' CEL IP and CIDR libraries and CEL's duration and timestamp accessors, without a server.
@Suite("CEL network and time libraries")
struct CELNetworkAndTimeTests {
    func eval(_ rule: String) throws -> JSON {
        try CELEvaluator(variables: [:]).eval(try CELParser.parse(rule))
    }

    /// The message of the CEL error `rule` fails with ("" when it does not fail).
    func failure(_ rule: String) -> String {
        do {
            _ = try eval(rule)
            return ""
        } catch { return "\(error)" }
    }

    @Test func ipAddressesParseToTheirCanonicalFormAndClassify() throws {
        #expect(try eval("ip('127.0.0.1')") == "127.0.0.1")
        #expect(try eval("ip('2001:DB8:0:0:0::ABCD')") == "2001:db8::abcd")
        #expect(try eval("ip('::1') == ip('0:0:0:0:0:0:0:1')") == true)
        #expect(try eval("string(ip('fe80:0:0:1:0:0:0:1'))") == "fe80:0:0:1::1")
        #expect(try eval("isIP('::1') && isIP('10.0.0.1') && !isIP('127.0.0.256') && !isIP(':::1')") == true)
        #expect(try eval("isIP('fe80::1%eth0') || isIP('::ffff:1.2.3.4') || isIP('010.0.0.1')") == false)
        #expect(try eval("ip.isCanonical('127.0.0.1') && ip.isCanonical('2001:db8::abcd')") == true)
        #expect(try eval("ip.isCanonical('2001:DB8::ABCD') || ip.isCanonical('2001:db8::0:0:0:abcd')") == false)
        #expect(try eval("ip('127.0.0.1').family()") == 4)
        #expect(try eval("ip('::1').family()") == 6)
        #expect(try eval("ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified()") == true)
        #expect(try eval("ip('127.0.0.1').isUnspecified() || ip('::1').isUnspecified()") == false)
        #expect(try eval("ip('127.0.0.1').isLoopback() && ip('::1').isLoopback()") == true)
        #expect(try eval("ip('192.168.0.1').isLoopback() || ip('2001:db8::abcd').isLoopback()") == false)
        #expect(try eval("ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()") == true)
        #expect(try eval("ip('224.0.1.1').isLinkLocalMulticast() || ip('fd00::1').isLinkLocalMulticast()") == false)
        #expect(try eval("ip('169.254.169.254').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()") == true)
        #expect(try eval("ip('192.168.0.1').isLinkLocalUnicast() || ip('fd80::1').isLinkLocalUnicast()") == false)
        #expect(try eval("ip('192.168.0.1').isGlobalUnicast() && ip('2001:db8::abcd').isGlobalUnicast()") == true)
        #expect(try eval("ip('255.255.255.255').isGlobalUnicast() || ip('ff00::1').isGlobalUnicast()") == false)
    }

    @Test func aBadAddressIsAnEvaluationErrorNamingIt() {
        #expect(
            failure("ip('127.0.0.256')").hasPrefix(
                #"IP Address "127.0.0.256" parse error during conversion from string"#))
        #expect(failure("ip('not an ip')").contains(#""not an ip""#))
        #expect(failure("ip('fe80::1%eth0')") == #"IP address "fe80::1%eth0" with zone value is not allowed"#)
        #expect(failure("ip('::ffff:1.2.3.4')") == #"IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed"#)
        #expect(failure("ip.isCanonical('nope')").contains(#""nope""#))
        #expect(failure("ip(1)").contains("no such overload"))
        #expect(failure("'x.y'.family()").contains(#""x.y""#))
    }

    @Test func cidrsContainAddressesAndNetworks() throws {
        #expect(try eval("cidr('192.168.0.0/16')") == "192.168.0.0/16")
        #expect(try eval("string(cidr('2001:DB8::/32'))") == "2001:db8::/32")
        #expect(try eval("isCIDR('192.168.0.0/16') && isCIDR('::1/128')") == true)
        #expect(
            try eval("isCIDR('192.168.0.0/33') || isCIDR('::1/129') || isCIDR('10.0.0.0') || isCIDR('10.0.0.0/08')")
                == false)
        #expect(try eval("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))") == true)
        #expect(try eval("cidr('192.168.0.0/24').containsIP('192.168.1.1')") == false)
        #expect(try eval("cidr('192.168.0.0/24').containsIP('::1') || cidr('::/0').containsIP('1.2.3.4')") == false)
        #expect(try eval("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))") == true)
        #expect(try eval("cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')") == true)
        #expect(try eval("cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')") == false)
        #expect(try eval("cidr('192.168.1.0/24').containsCIDR('192.168.0.0/16')") == false)
        #expect(try eval("cidr('192.168.0.1/24').ip()") == "192.168.0.1")
        #expect(try eval("cidr('::1/128').ip().family()") == 6)
        #expect(try eval("cidr('192.168.0.1/24').masked()") == "192.168.0.0/24")
        #expect(try eval("cidr('2001:db8::ff/120').masked()") == "2001:db8::/120")
        #expect(try eval("cidr('192.168.0.0/24') == cidr('192.168.0.0/24').masked()") == true)
        #expect(try eval("cidr('192.168.0.1/24') == cidr('192.168.0.1/24').masked()") == false)
        #expect(try eval("cidr('192.168.0.0/16').prefixLength()") == 16)
        #expect(try eval("cidr('::1/128').prefixLength()") == 128)
    }

    @Test func aBadCIDRIsAnEvaluationErrorNamingIt() {
        #expect(failure("cidr('192.168.0.0/33')").contains(#""192.168.0.0/33""#))
        #expect(failure("cidr('10.0.0.300/8')").contains("10.0.0.300"))
        #expect(failure("cidr('1.2.3.4')").contains(#""1.2.3.4""#))
        #expect(
            failure("cidr('::ffff:1.2.3.4/120')") == #"IPv4-mapped IPv6 address "::ffff:1.2.3.4/120" is not allowed"#)
        #expect(failure("cidr('10.0.0.0/8').containsIP('10.0.0.x')").contains(#""10.0.0.x""#))
        #expect(failure("cidr('10.0.0.0/8').containsCIDR('10.0.0.0/99')").contains(#""10.0.0.0/99""#))
    }

    @Test func durationsTellTheirWholeUnits() throws {
        #expect(try eval("duration('1h30m').getHours()") == 1)
        #expect(try eval("duration('1h30m').getMinutes()") == 90)
        #expect(try eval("duration('1h30m').getSeconds()") == 5400)
        #expect(try eval("duration('1.5s').getMilliseconds()") == 1500)
        #expect(try eval("duration('-90m').getHours()") == -1)
        #expect(try eval("string(duration('1h'))") == "3600s")
        #expect(try eval("string(duration('1500ms'))") == "1.5s")
        #expect(try eval("duration('1h') + duration('30m') == duration('90m')") == true)
        #expect(try eval("duration('1h') - duration('90m') < duration('0s')") == true)
        #expect(failure("duration('forever')") == #"invalid duration: "forever""#)
        #expect(failure("duration('1h').getFullYear()").contains("found no matching overload"))
    }

    @Test func timestampsTellTheirCalendarFieldsInUTCOrAZone() throws {
        let t = "timestamp('2026-03-01T23:45:30.250Z')"
        #expect(try eval("\(t).getFullYear()") == 2026)
        #expect(try eval("\(t).getMonth()") == 2)
        #expect(try eval("\(t).getDayOfMonth()") == 0)
        #expect(try eval("\(t).getDate()") == 1)
        #expect(try eval("\(t).getDayOfYear()") == 59)
        #expect(try eval("\(t).getDayOfWeek()") == 0)
        #expect(try eval("\(t).getHours()") == 23)
        #expect(try eval("\(t).getMinutes()") == 45)
        #expect(try eval("\(t).getSeconds()") == 30)
        #expect(try eval("\(t).getMilliseconds()") == 250)
        // In another zone the day (and with it month and year fields) may be another.
        #expect(try eval("\(t).getHours('+02:00')") == 1)
        #expect(try eval("\(t).getDayOfWeek('+02:00')") == 1)
        #expect(try eval("\(t).getDayOfMonth('-05:30')") == 0)
        #expect(try eval("\(t).getHours('-05:30')") == 18)
        #expect(try eval("\(t).getMinutes('-05:30')") == 15)
        #expect(try eval("\(t).getHours('Asia/Tokyo')") == 8)
        #expect(try eval("\(t).getMonth('Asia/Tokyo')") == 2)
        #expect(try eval("timestamp('2026-12-31T23:00:00Z').getFullYear('Europe/Berlin')") == 2027)
        #expect(try eval("timestamp('2026-12-31T23:00:00Z').getDayOfYear()") == 364)
        #expect(try eval("string(\(t))") == "2026-03-01T23:45:30.25Z")
        #expect(try eval("\(t) + duration('15m') == timestamp('2026-03-02T00:00:30.25Z')") == true)
        #expect(try eval("\(t) - timestamp('2026-03-01T23:45:00Z') == duration('30.25s')") == true)
        #expect(try eval("timestamp(0).getFullYear()") == 1970)
        #expect(failure("\(t).getHours('Mars/Olympus')") == "unknown time zone Mars/Olympus")
        #expect(failure("timestamp('yesterday')") == #"invalid timestamp: "yesterday""#)
        #expect(failure("\(t) + \(t)").contains("no such overload"))
    }
}
