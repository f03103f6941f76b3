import BerthCRIProtocol
import BerthJSON
import BerthKube
import Foundation

/// A pod's imagePullSecrets as the CRI's AuthConfigs, as the kubelet's keyring reads them:
/// `kubernetes.io/dockerconfigjson` (`{"auths": {REGISTRY: {...}}}`) and the older
/// `kubernetes.io/dockercfg` (`{REGISTRY: {...}}`), each entry with `username`/`password` or `auth`
/// (base64 of `user:password`), matched to the image's registry host. The kubelet tries each match in
/// turn; an image with none pulls anonymously.
enum ImagePullSecrets {
    /// The registry host of an image reference (`docker.io` when it names none).
    static func registry(of image: String) -> String {
        let first = image.split(separator: "/", maxSplits: 1).first.map(String.init) ?? image
        guard image.contains("/"), first.contains(".") || first.contains(":") || first == "localhost" else {
            return "docker.io"
        }
        return first
    }

    /// A registry key as written in a docker config (`https://host/v1/`, `host`, `host:port`) as a host.
    static func host(of key: String) -> String {
        var text = Substring(key)
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        let host = String(text.split(separator: "/", maxSplits: 1).first ?? text)
        return host == "index.docker.io" || host == "registry-1.docker.io" ? "docker.io" : host
    }

    /// The credentials of `secrets` for `image`'s registry, in the secrets' order.
    static func credentials(for image: String, secrets: [CoreV1.Secret]) -> [Runtime_V1_AuthConfig] {
        let wanted = registry(of: image)
        var found: [Runtime_V1_AuthConfig] = []
        for secret in secrets {
            let entries: JSON
            if let bytes = secret.data[".dockerconfigjson"], let parsed = try? JSON.parse(bytes) {
                entries = parsed["auths"]
            } else if let bytes = secret.data[".dockercfg"], let parsed = try? JSON.parse(bytes) {
                entries = parsed
            } else {
                continue
            }
            for (key, entry) in (entries.object ?? [:]).sorted(by: { $0.key < $1.key }) where host(of: key) == wanted {
                var auth = Runtime_V1_AuthConfig()
                auth.serverAddress = key
                auth.username = entry["username"].string ?? ""
                auth.password = entry["password"].string ?? ""
                if auth.username.isEmpty, let encoded = entry["auth"].string,
                    let decoded = Data(base64Encoded: encoded).map({ String(decoding: $0, as: UTF8.self) }),
                    let colon = decoded.firstIndex(of: ":")
                {
                    auth.username = String(decoded[..<colon])
                    auth.password = String(decoded[decoded.index(after: colon)...])
                }
                auth.identityToken = entry["identitytoken"].string ?? ""
                found.append(auth)
            }
        }
        return found
    }
}
