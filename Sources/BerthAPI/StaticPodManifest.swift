import BerthKube
import Crypto
import Foundation

/// A static pod's manifest, read as the kubelet's file source reads one (pkg/kubelet/config/file.go and
/// common.go's applyDefaults): a v1 Pod in YAML or JSON, defaulted and validated as the API server would,
/// then made this node's — its UID the MD5 of the pod with its node and file (so the same file on the same
/// node is the same pod across restarts), its name suffixed with the node's, its namespace `default` if
/// none, bound to the node, tolerating every NoExecute taint, and annotated with its hash and source.
public enum StaticPodManifest {
    /// The annotations the kubelet puts on static pods and their mirror pods.
    public static let hashAnnotation = "kubernetes.io/config.hash"
    public static let sourceAnnotation = "kubernetes.io/config.source"
    public static let mirrorAnnotation = "kubernetes.io/config.mirror"

    /// Why a manifest file is not a pod; names the file and, for a field, the field.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func pod(contents: String, path: String, nodeName: String) throws(Failure) -> CoreV1.Pod {
        var object: JSON
        do {
            object = try JSON.parseYAML(contents)
        } catch {
            throw Failure(description: "\(path): not a YAML or JSON document: \(error)")
        }
        guard object.object != nil else { throw Failure(description: "\(path): the manifest is not an object") }
        guard object["kind"].string == "Pod", object["apiVersion"].string == "v1" else {
            throw Failure(
                description:
                    "\(path): a static pod manifest holds one v1 Pod, not apiVersion \(object["apiVersion"].string ?? "(none)") kind \(object["kind"].string ?? "(none)")"
            )
        }
        guard let name = object["metadata"]["name"].string, !name.isEmpty else {
            throw Failure(description: "\(path): metadata.name: Required value: name or generateName is required")
        }
        PodStrategy().applyDefaults(&object, creating: true)
        let causes = PodTemplate.validate(object["spec"], path: "spec")
        if !causes.isEmpty {
            let listed = causes.map { "\($0.field): \($0.message)" }.joined(separator: ", ")
            throw Failure(description: "\(path): invalid pod: \(listed)")
        }
        if object["metadata"]["uid"].string?.isEmpty ?? true {
            var hasher = Insecure.MD5()
            hasher.update(data: object.serialized())
            hasher.update(data: Array("host:\(nodeName)".utf8))
            hasher.update(data: Array("file:\(path)".utf8))
            object["metadata"]["uid"] = .string(hasher.finalize().map { String(format: "%02x", $0) }.joined())
        }
        object["metadata"]["name"] = .string("\(name)-\(nodeName.lowercased())")
        if object["metadata"]["namespace"].string?.isEmpty ?? true { object["metadata"]["namespace"] = "default" }
        object["spec"]["nodeName"] = .string(nodeName)
        var annotations = object["metadata"]["annotations"].object ?? [:]
        annotations[hashAnnotation] = object["metadata"]["uid"]
        annotations[sourceAnnotation] = "file"
        object["metadata"]["annotations"] = .object(annotations)
        var tolerations = object["spec"]["tolerations"].array ?? []
        let everyNoExecute: JSON = ["operator": "Exists", "effect": "NoExecute"]
        if !tolerations.contains(everyNoExecute) { tolerations.append(everyNoExecute) }
        object["spec"]["tolerations"] = .array(tolerations)
        object["status"] = ["phase": "Pending"]
        do {
            return try CoreV1.Pod(kubeJSON: object)
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
    }

    /// Whether `pod` is a mirror pod (the API's copy of a static pod).
    public static func isMirror(_ pod: CoreV1.Pod) -> Bool {
        pod.metadata.annotations[mirrorAnnotation] != nil
    }
}
