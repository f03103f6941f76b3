import BerthAPI
import BerthControl
import Foundation
import Logging

/// The identity `berth agent --server URL --token-file F` joins the cluster for, kept under the agent
/// root so that a restart needs neither the token nor the server's consent again:
///
///     <agent-root>/pki/node.key      the node's P-256 key (0600), made here and never sent
///     <agent-root>/pki/node.crt      client certificate, CN=system:node:<name>, O=system:nodes
///     <agent-root>/pki/serving.crt   the HTTPS API's certificate (the node's name and address)
///     <agent-root>/pki/ca.crt        the cluster CA, as pinned by the token
///     <agent-root>/kubelet.kubeconfig   the server, the CA and the node's certificate: the node's
///                                       own kubeconfig, usable with kubectl too
public struct NodeCredentials: Sendable {
    public var kubeconfigPath: String
    public var keyPEM: String
    public var servingCertificatePEM: String
    public var caPEM: String
    /// The cluster's pod range as the server told it at the join (nil: it allocates none).
    public var clusterCIDR: String?

    /// The stored credentials if they are still this node's (its key, its name, not about to expire),
    /// else a join: the CA fetched and checked against the token's hash, then certificates for a CSR
    /// of the node's key (the one stored if any, so the server sees the same key join again).
    public static func obtain(
        root: String, server: String, tokenFile: String?, nodeName: String, address: String, logger: Logger
    ) async throws(JoinError) -> NodeCredentials {
        let pki = root + "/pki"
        let paths = (
            key: pki + "/node.key", client: pki + "/node.crt", serving: pki + "/serving.crt", ca: pki + "/ca.crt",
            clusterCIDR: pki + "/cluster-cidr"
        )
        func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
        let key: NodeKey
        if let pem = read(paths.key) { key = try NodeKey(pem: pem) } else { key = NodeKey() }
        let kubeconfig = root + "/kubelet.kubeconfig"
        if let client = read(paths.client), let serving = read(paths.serving), let ca = read(paths.ca),
            key.holds(certificatePEM: client, nodeName: nodeName)
        {
            logger.info("using the node's stored credentials", metadata: ["directory": "\(pki)"])
            // The server may have moved (a new address, a name); the identity has not.
            try write(Self.kubeconfig(server: server, caPath: paths.ca, paths.client, paths.key), to: kubeconfig)
            return NodeCredentials(
                kubeconfigPath: kubeconfig, keyPEM: key.privateKeyPEM, servingCertificatePEM: serving, caPEM: ca,
                clusterCIDR: read(paths.clusterCIDR).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        }
        guard let tokenFile else {
            throw JoinError(.invalid, "no stored node credentials in \(pki): --token-file is needed to join")
        }
        let text: String
        do { text = try String(contentsOfFile: tokenFile, encoding: .utf8) } catch {
            throw JoinError(.invalid, "--token-file \(tokenFile) cannot be read: \(error.localizedDescription)")
        }
        let joiner = try JoinClient(server: server, token: try JoinToken(parsing: text))
        let ca = try await joiner.fetchCA()
        let answer = try await joiner.join(
            nodeName: nodeName, csrPEM: try key.certificateSigningRequest(nodeName: nodeName), addresses: [address],
            caPEM: ca)
        guard key.holds(certificatePEM: answer.clientCertificatePEM, nodeName: nodeName) else {
            throw JoinError(.invalid, "the server's certificate is not for this node's key and name")
        }
        do {
            try FileManager.default.createDirectory(
                atPath: pki, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw JoinError(.invalid, "cannot make \(pki): \(error.localizedDescription)")
        }
        try write(key.privateKeyPEM, to: paths.key)
        try write(answer.caPEM, to: paths.ca, mode: 0o644)
        try write(answer.clientCertificatePEM, to: paths.client, mode: 0o644)
        try write(answer.servingCertificatePEM, to: paths.serving, mode: 0o644)
        if let cidr = answer.clusterCIDR { try write(cidr + "\n", to: paths.clusterCIDR, mode: 0o644) }
        try write(Self.kubeconfig(server: server, caPath: paths.ca, paths.client, paths.key), to: kubeconfig)
        logger.notice(
            "joined the cluster",
            metadata: ["node": "\(nodeName)", "server": "\(server)", "kubeconfig": "\(kubeconfig)"])
        return NodeCredentials(
            kubeconfigPath: kubeconfig, keyPEM: key.privateKeyPEM, servingCertificatePEM: answer.servingCertificatePEM,
            caPEM: answer.caPEM, clusterCIDR: answer.clusterCIDR)
    }

    /// The node's kubeconfig: files by absolute path, as kubectl and client-go read them.
    static func kubeconfig(server: String, caPath: String, _ certificatePath: String, _ keyPath: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: berth
          cluster:
            server: \(server)
            certificate-authority: \(caPath)
        users:
        - name: node
          user:
            client-certificate: \(certificatePath)
            client-key: \(keyPath)
        contexts:
        - name: berth
          context:
            cluster: berth
            user: node
        current-context: berth

        """
    }

    /// Replaces a file whole (a crash leaves the old one or the new one, never half of either).
    static func write(_ text: String, to path: String, mode: Int = 0o600) throws(JoinError) {
        let temporary = path + ".tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]),
            rename(temporary, path) == 0
        else {
            throw JoinError(.invalid, "cannot write \(path)")
        }
    }
}
