@testable import BerthAPI
import Foundation
import Testing

/// The join token's format, and the join endpoint: certificates for the right token, a 401 for a wrong
/// one, a node name held by the key that joined it while its Node exists.
extension APITests {
    @Suite("Joining nodes", .serialized)
    struct NodeJoinTests {
        static let hash = String(repeating: "ab", count: 32)

        @Test func aTokenReadsAndWritesInK3sFormat() throws {
            let token = try JoinToken(parsing: "K10\(Self.hash)::server:s3cret\n")
            #expect(token.caHash == Self.hash && token.secret == "s3cret")
            #expect(token.description == "K10\(Self.hash)::server:s3cret")
            for bad in [
                "", "s3cret", "K10\(Self.hash)s3cret", "K10abc::server:s3cret", "K10\(Self.hash)::server:",
                "K10\(Self.hash.uppercased())::server:x", "X10\(Self.hash)::server:x",
            ] {
                #expect(throws: JoinError.self, "\(bad)") { try JoinToken(parsing: bad) }
            }
            do {
                _ = try JoinToken(parsing: "nonsense")
            } catch {
                #expect(error.code == .malformedToken)
                #expect(error.message.contains("expected K10<sha256 hex of the CA certificate>::server:<secret>"))
            }
        }

        @Test func aTokenAcceptsItselfOrItsSecretOnly() {
            let token = JoinToken(caHash: Self.hash, secret: "s3cret")
            #expect(token.accepts("K10\(Self.hash)::server:s3cret"))
            #expect(token.accepts("s3cret"))
            #expect(!token.accepts("s3cre"))
            #expect(!token.accepts("s3cret2"))
            #expect(!token.accepts("K10\(String(repeating: "cd", count: 32))::server:s3cret"), "another CA's")
            #expect(!token.accepts(""))
        }

        @Test func theCAHashIsTheSHA256OfItsDER() throws {
            let dir = NSTemporaryDirectory() + "berth-token-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let pki = try PKI.loadOrCreate(dataDir: dir, sans: [])
            // What `openssl x509 -outform der | sha256sum` says of the CA, as k3s computes it.
            let out = try run(
                "/bin/sh", ["-c", "openssl x509 -in \(dir)/pki/ca.crt -outform der | sha256sum | cut -d' ' -f1"])
            #expect(try JoinToken.caHash(pem: pki.caPEM) == out.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            let (token, path) = try JoinToken.loadOrCreate(dataDir: dir, caPEM: pki.caPEM)
            #expect(path == dir + "/token")
            #expect(try JoinToken.loadOrCreate(dataDir: dir, caPEM: pki.caPEM).token == token, "kept across starts")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }

        /// The join request's body.
        static func request(_ node: String, _ key: NodeKey, addresses: [String] = ["127.0.0.1"]) throws -> String {
            let body: JSON = [
                "nodeName": .string(node), "csr": .string(try key.certificateSigningRequest(nodeName: node)),
                "addresses": .array(addresses.map { .string($0) }),
            ]
            return String(decoding: body.serialized(), as: UTF8.self)
        }

        @Test func aNodeJoinsWithTheTokenAndKeepsItsName() async throws {
            let t = try await TestServer()
            let secret = t.server.joinToken.description
            let (caCode, ca) = try t.curl("GET", "/cacerts", token: "")
            #expect(caCode == 200 && ca.string == t.server.pki.caPEM)

            let key = NodeKey()
            var (code, answer) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", key), token: secret)
            try #require(code == 200, "\(answer)")
            let client = answer["clientCertificate"].string ?? ""
            #expect(key.holds(certificatePEM: client, nodeName: "n1"))
            #expect(answer["ca"].string == t.server.pki.caPEM)
            // The certificates verify against the CA, for client and server use, the node's name and address.
            let dir = t.dir + "/joined"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try client.write(toFile: dir + "/client.crt", atomically: true, encoding: .utf8)
            try (answer["servingCertificate"].string ?? "").write(
                toFile: dir + "/serving.crt", atomically: true, encoding: .utf8)
            let verified = try run(
                "/bin/sh",
                [
                    "-c",
                    """
                    openssl verify -CAfile \(t.dir)/pki/ca.crt -purpose sslclient \(dir)/client.crt && \
                    openssl verify -CAfile \(t.dir)/pki/ca.crt -purpose sslserver \(dir)/serving.crt && \
                    openssl x509 -in \(dir)/client.crt -noout -subject && \
                    openssl x509 -in \(dir)/serving.crt -noout -ext subjectAltName
                    """,
                ])
            #expect(verified.stdout.contains("O = system:nodes, CN = system:node:n1"), "\(verified)")
            #expect(verified.stdout.contains("DNS:n1") && verified.stdout.contains("IP Address:127.0.0.1"))

            // A wrong token (or none) is refused, and says so.
            (code, answer) = try t.curl(
                "POST", "/berth/v1/join", body: Self.request("n2", NodeKey()),
                token: "K10\(t.server.joinToken.caHash)::server:wrong")
            #expect(code == 401 && (answer["message"].string ?? "").contains("join token"), "\(answer)")
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("n2", NodeKey()), token: "")
            #expect(code == 401)
            // The name is the first key's while its Node exists; that key may join again.
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", key), token: secret)
            #expect(code == 200, "the same key joins again")
            (code, answer) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", NodeKey()), token: secret)
            #expect(code == 200, "no Node yet: the name is not held")
            let second = NodeKey()
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", second), token: secret)
            #expect(code == 200)
            (code, _) = try t.curl("POST", "/api/v1/nodes", body: #"{"metadata":{"name":"n1"}}"#)
            #expect(code == 201)
            (code, answer) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", NodeKey()), token: secret)
            #expect(code == 403, "\(answer)")
            #expect(
                answer["message"].string
                    == "node \"n1\" has already joined with another key; delete the Node to join it again")
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", second), token: secret)
            #expect(code == 200, "the key that holds the name")
            (code, _) = try t.curl("DELETE", "/api/v1/nodes/n1")
            #expect(code == 200)
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("n1", NodeKey()), token: secret)
            #expect(code == 200, "the Node deleted, the name is free")

            // Bad requests: a name that is no node name, a CSR that is not one.
            (code, _) = try t.curl("POST", "/berth/v1/join", body: Self.request("Bad_Name", NodeKey()), token: secret)
            #expect(code == 400)
            (code, _) = try t.curl(
                "POST", "/berth/v1/join", body: #"{"nodeName":"n3","csr":"nope"}"#, token: secret)
            #expect(code == 400)

            // Each refusal is an audit event naming who, the node and why.
            let audit = try String(contentsOfFile: t.dir + "/audit.log", encoding: .utf8)
            let events = audit.split(separator: "\n").compactMap { try? JSON.parse(Array($0.utf8)) }
            #expect(events.count == 5, "\(audit)")
            let taken = events.first { $0["responseStatus"]["code"] == .int(403) }
            #expect(taken?["kind"] == "Event" && taken?["apiVersion"] == "audit.k8s.io/v1")
            #expect(taken?["requestURI"] == "/berth/v1/join" && taken?["verb"] == "create")
            #expect(taken?["sourceIPs"] == ["127.0.0.1"] && taken?["user"]["username"] == "system:anonymous")
            #expect(taken?["annotations"]["berth.io/node"] == "n1")
            let message: String = taken?["responseStatus"]["message"].string ?? ""
            #expect(message.contains("already joined"))
            #expect(taken?["stageTimestamp"].string?.hasPrefix("20") == true)
            await t.stop()
        }
    }
}
