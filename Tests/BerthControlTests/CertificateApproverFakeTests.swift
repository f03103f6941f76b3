import BerthKube
import Foundation
import Logging
import Testing

@testable import BerthAPI
@testable import BerthControl

/// csrapproving against a ``FakeCluster``: which requests it recognizes, which review it asks for, and
/// that a denied review leaves a request alone.
@Suite("csr approver on a fake cluster")
struct CertificateApproverFakeTests {
    typealias CSR = CertificatesV1.CertificateSigningRequest

    static func request(_ name: String, subject: String, requester: String) throws -> CSR {
        let dir = NSTemporaryDirectory() + "berth-csr-fake-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try run(
            "/usr/bin/openssl",
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                dir + "/k", "-subj", subject, "-out", dir + "/r",
            ])
        #expect(made.ok, "\(made.stderr)")
        var csr = CSR()
        csr.metadata = MetaV1.ObjectMeta(name: name)
        csr.spec.request = Array(try String(contentsOfFile: dir + "/r", encoding: .utf8).utf8)
        csr.spec.signerName = "kubernetes.io/kube-apiserver-client-kubelet"
        csr.spec.usages = [.usageDigitalSignature, .usageClientAuth]
        csr.spec.username = requester
        csr.spec.groups = ["system:bootstrappers"]
        return csr
    }

    @Test func onlyAllowedRequestersGetNodeClientRequestsApproved() async throws {
        let cluster = FakeCluster()
        let logger = Logger(label: "csr-approver-test")
        let context = ControllerContext(
            client: { _ in cluster }, informers: InformerFactory(provider: cluster, logger: logger),
            events: EventRecorder(), logger: logger, config: ControlPlaneConfig())
        let asked = Asked()
        cluster.answerAccessReviews { review in
            asked.add(review)
            return review.spec.user == "bootstrap"
                && review.spec.resourceAttributes?.subresource == "nodeclient"
                && review.spec.resourceAttributes?.verb == "create"
                && review.spec.resourceAttributes?.resource == "certificatesigningrequests"
        }
        cluster.seed(
            try Self.request("refused", subject: "/O=system:nodes/CN=system:node:a", requester: "stranger"),
            try Self.request("notanode", subject: "/O=dev/CN=alice", requester: "bootstrap"),
            try Self.request("node-b", subject: "/O=system:nodes/CN=system:node:b", requester: "bootstrap"))
        let approver = CertificateApprovingController(context)
        let informers = context.informers
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await informers.run() }
                await informers.waitForSync()
                group.addTask { await approver.run() }
            }
        }
        defer { task.cancel() }
        try await cluster.waitUntil("node-b approved") {
            cluster.object(CSR.self, name: "node-b")?.condition(.certificateApproved)?.reason == "AutoApproved"
        }
        // A refused review writes nothing the cluster's change feed would show: poll, with a deadline.
        let deadline = ContinuousClock.now + .seconds(20)
        while !asked.users.contains("stranger") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(asked.users.contains("stranger"), "\(asked.users)")
        #expect(cluster.object(CSR.self, name: "refused")?.status.conditions.isEmpty == true)
        #expect(cluster.object(CSR.self, name: "notanode")?.status.conditions.isEmpty == true)
        // Not a node client request: no review was asked for it at all.
        #expect(asked.users.filter { $0 == "bootstrap" }.count == 1, "\(asked.users)")
        #expect(cluster.actions.contains { $0.verb == "patch" && $0.subresource == "approval" })
    }

    final class Asked: @unchecked Sendable {
        private let lock = NSLock()
        private var reviews: [AuthorizationV1.SubjectAccessReview] = []
        func add(_ review: AuthorizationV1.SubjectAccessReview) { lock.withLock { reviews.append(review) } }
        var users: [String] { lock.withLock { reviews.compactMap(\.spec.user) } }
    }
}
