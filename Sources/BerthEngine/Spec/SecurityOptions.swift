#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// One `--security-opt` value, parsed (docker's daemon `parseSecurityOpt`, plus the CLI's client-side
/// `systempaths=unconfined`).
public enum SecurityOption: Sendable, Equatable {
    /// `no-new-privileges`, `no-new-privileges=true|false`.
    case noNewPrivileges(Bool)
    /// `seccomp=unconfined`, `seccomp=builtin` (docker's default profile), `seccomp=/path/profile.json`, or
    /// the profile's JSON itself (what docker's CLI sends after reading the file; told apart from a path
    /// by its opening brace).
    case seccomp(String)
    /// `apparmor=PROFILE`: only `unconfined` can be honoured here.
    case apparmor(String)
    /// `label=…` (SELinux): only `disable` can be honoured here.
    case label(String)
    /// `writable-cgroups[=true|false]`: /sys/fs/cgroup read-write (default: only when privileged).
    case writableCgroups(Bool)
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys paths.
    case systemPathsUnconfined
}

/// What the security options of one request add up to.
public struct SecuritySettings: Sendable, Equatable {
    public enum Seccomp: Sendable, Equatable {
        case dockerDefault
        case unconfined
        /// A profile in docker's JSON format.
        case profile([UInt8])
    }
    public var seccomp: Seccomp = .dockerDefault
    public var noNewPrivileges = false
    /// nil: docker's default (writable only when privileged).
    public var writableCgroups: Bool?
    public var unconfinedSystemPaths = false

    public init() {}

    /// Folds the options in order (a later one wins); reads a seccomp profile file named by path.
    public init(_ options: [String]) throws(EngineError) {
        for text in options {
            switch try RunOptionParser.parseSecurityOpt(text) {
            case .noNewPrivileges(let value): noNewPrivileges = value
            case .writableCgroups(let value): writableCgroups = value
            case .systemPathsUnconfined: unconfinedSystemPaths = true
            case .apparmor(let profile):
                guard profile == "unconfined" else {
                    throw .invalidArgument(
                        what: "--security-opt",
                        reason: "\(text): AppArmor is not available on this host; only apparmor=unconfined is accepted")
                }
            case .label(let value):
                guard value == "disable" else {
                    throw .invalidArgument(
                        what: "--security-opt",
                        reason: "\(text): SELinux is not available on this host; only label=disable is accepted")
                }
            case .seccomp(let value):
                switch value {
                case "unconfined": seccomp = .unconfined
                case "builtin": seccomp = .dockerDefault
                case let json where json.first(where: { !$0.isWhitespace }) == "{": seccomp = .profile(Array(json.utf8))
                default:
                    do {
                        seccomp = .profile(try FileSystem.readFile(value))
                    } catch {
                        throw .invalidArgument(
                            what: "--security-opt", reason: "opening seccomp profile (\(value)) failed: \(error)")
                    }
                }
            }
        }
    }
}

extension RunOptionParser {
    /// `--security-opt KEY=VALUE` (docker also still accepts `KEY:VALUE`), or `no-new-privileges`,
    /// `writable-cgroups`, `disable` (the same as `label=disable`) alone.
    public static func parseSecurityOpt(_ text: String) throws(EngineError) -> SecurityOption {
        switch text {
        case "no-new-privileges": return .noNewPrivileges(true)
        case "writable-cgroups": return .writableCgroups(true)
        case "disable": return .label("disable")
        case "systempaths=unconfined": return .systemPathsUnconfined
        default: break
        }
        let separator: Character = text.contains("=") ? "=" : ":"
        guard let index = text.firstIndex(of: separator) else {
            throw .invalidArgument(what: "--security-opt", reason: "\"\(text)\": expected KEY=VALUE")
        }
        let key = String(text[..<index]), value = String(text[text.index(after: index)...])
        func boolean() throws(EngineError) -> Bool {
            guard let parsed = parseBool(value) else {
                throw .invalidArgument(what: "--security-opt", reason: "\"\(text)\": \(key) takes true or false")
            }
            return parsed
        }
        switch key {
        case "no-new-privileges": return .noNewPrivileges(try boolean())
        case "writable-cgroups": return .writableCgroups(try boolean())
        case "seccomp" where !value.isEmpty: return .seccomp(value)
        case "apparmor" where !value.isEmpty: return .apparmor(value)
        case "label" where !value.isEmpty: return .label(value)
        case "seccomp", "apparmor", "label":
            throw .invalidArgument(what: "--security-opt", reason: "\"\(text)\": \(key) needs a value")
        default:
            throw .invalidArgument(
                what: "--security-opt",
                reason:
                    "\"\(text)\": unknown option \(key) (seccomp, apparmor, label, no-new-privileges, writable-cgroups, systempaths)"
            )
        }
    }

    /// Go's strconv.ParseBool.
    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: return nil
        }
    }
}
