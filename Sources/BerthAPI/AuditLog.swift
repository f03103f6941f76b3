import Foundation
import Logging

/// Refusals worth a human's look — a join with a wrong token, a node name taken by another key, a
/// node identity reaching for what is not its own — written to the server's log and, as JSON lines
/// shaped like kube-apiserver's audit events (audit.k8s.io/v1 Event, level Metadata), to
/// `<data-dir>/audit.log`, where tools that read upstream's audit log find the fields they expect.
public final class AuditLog: Sendable {
    /// One refused request.
    public struct Refusal: Sendable {
        public var verb: String
        public var requestURI: String
        /// The client's address (without its port), as upstream's sourceIPs.
        public var sourceIP: String
        /// Who the request authenticated as; nil for an unauthenticated one (a join).
        public var user: UserInfo?
        public var code: Int
        /// Why, in words (the answer's message).
        public var reason: String
        /// The node a join or a node identity named.
        public var node: String?
    }

    let path: String?
    let logger: Logger
    private let lock = NSLock()

    /// `path` nil: only the server's log.
    public init(path: String?, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    public func refused(_ refusal: Refusal) {
        logger.warning(
            "refused",
            metadata: [
                "who": "\(refusal.sourceIP)", "user": "\(refusal.user?.name ?? "system:anonymous")",
                "node": "\(refusal.node ?? "")", "verb": "\(refusal.verb)", "uri": "\(refusal.requestURI)",
                "code": "\(refusal.code)", "reason": "\(refusal.reason)",
            ])
        guard let path else { return }
        var line = Self.event(refusal, at: Date()).serialized()
        line.append(UInt8(ascii: "\n"))
        lock.lock()
        defer { lock.unlock() }
        // O_APPEND: one write per line, so lines from two servers sharing a directory do not interleave.
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            logger.error("cannot write the audit log", metadata: ["path": "\(path)", "errno": "\(errno)"])
            return
        }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The audit event of a refusal (stage ResponseComplete: the answer is known).
    static func event(_ refusal: Refusal, at time: Date) -> JSON {
        let stamp = APITime.micro(time)
        let user = (refusal.user ?? UserInfo(name: "system:anonymous", groups: ["system:unauthenticated"])).json
        var event: JSON = [
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": .string(UUID().uuidString.lowercased()), "stage": "ResponseComplete",
            "requestURI": .string(refusal.requestURI), "verb": .string(refusal.verb), "user": user,
            "sourceIPs": [.string(refusal.sourceIP)],
            "responseStatus": [
                "metadata": [:], "status": "Failure", "code": .int(Int64(refusal.code)),
                "message": .string(refusal.reason),
            ],
            "requestReceivedTimestamp": .string(stamp), "stageTimestamp": .string(stamp),
            "annotations": [
                "authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": .string(refusal.reason),
            ],
        ]
        if let node = refusal.node { event["annotations"]["berth.io/node"] = .string(node) }
        return event
    }
}
