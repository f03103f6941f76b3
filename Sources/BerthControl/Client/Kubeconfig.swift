import BerthAPI
import Foundation

extension RemoteAPIServer {
    /// The API server a kubeconfig's current context names (or `context`), as kubectl reads it: the
    /// cluster's server URL and CA (`certificate-authority-data` or a `certificate-authority` file), the
    /// user's client certificate and key (inline or files) or bearer token (or `tokenFile`). Relative
    /// file paths are relative to the kubeconfig's directory, as client-go resolves them.
    public static func fromKubeconfig(_ path: String, context wanted: String? = nil) throws(HTTPSourceError)
        -> RemoteAPIServer
    {
        func fail(_ message: String) -> HTTPSourceError {
            HTTPSourceError(.invalidConfiguration, "kubeconfig \(path): \(message)")
        }
        let document: JSON
        do {
            document = try JSON.parseYAML(try String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw fail("cannot be read as YAML: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        func named(_ list: String, _ name: String) -> JSON? {
            document[list].array?.first { $0["name"].string == name }
        }
        func contents(inline: JSON, file: JSON, what: String) throws(HTTPSourceError) -> String? {
            if let data = inline.string {
                guard let decoded = Data(base64Encoded: data), let text = String(data: decoded, encoding: .utf8) else {
                    throw fail("\(what) is not base64 PEM")
                }
                return text
            }
            guard let file = file.string else { return nil }
            let resolved = file.hasPrefix("/") ? file : directory + "/" + file
            guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
                throw fail("\(what) file \(resolved) cannot be read")
            }
            return text
        }
        guard let contextName = wanted ?? document["current-context"].string, !contextName.isEmpty else {
            throw fail("no current-context")
        }
        guard let context = named("contexts", contextName)?["context"] else {
            throw fail("no context named \(contextName)")
        }
        guard let clusterName = context["cluster"].string, let cluster = named("clusters", clusterName)?["cluster"]
        else { throw fail("context \(contextName) names no cluster that is defined") }
        guard let url = cluster["server"].string else { throw fail("cluster \(clusterName) has no server") }
        guard
            let ca = try contents(
                inline: cluster["certificate-authority-data"], file: cluster["certificate-authority"],
                what: "certificate-authority")
        else { throw fail("cluster \(clusterName) has no certificate-authority: the server could not be verified") }
        guard let userName = context["user"].string, let user = named("users", userName)?["user"] else {
            throw fail("context \(contextName) names no user that is defined")
        }
        if let certificate = try contents(
            inline: user["client-certificate-data"], file: user["client-certificate"], what: "client-certificate"),
            let key = try contents(inline: user["client-key-data"], file: user["client-key"], what: "client-key")
        {
            return RemoteAPIServer(
                url: url, caPEM: ca, credentials: .clientCertificate(certificatePEM: certificate, privateKeyPEM: key))
        }
        if let token = user["token"].string {
            return RemoteAPIServer(url: url, caPEM: ca, credentials: .bearerToken(token))
        }
        if let file = user["tokenFile"].string,
            let token = try? String(
                contentsOfFile: file.hasPrefix("/") ? file : directory + "/" + file, encoding: .utf8)
        {
            return RemoteAPIServer(
                url: url, caPEM: ca, credentials: .bearerToken(token.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        throw fail("user \(userName) has neither a client certificate and key nor a token")
    }
}
