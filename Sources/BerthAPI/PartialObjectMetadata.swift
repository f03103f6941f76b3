/// meta.k8s.io PartialObjectMetadata: a resource's objects as their metadata alone, what a client asks
/// for with `Accept: …;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (client-go's metadata client:
/// the garbage collector's and quota's informers, `kubectl get --show-kind`'s kin). kube-apiserver's
/// asPartialObjectMetadata(List): kind and apiVersion of the conversion, the object's metadata; a list
/// keeps its resourceVersion and continue token, and each item is such an object.
enum PartialObjectMetadata {
    /// `object` (or list) converted; a Status, or anything without a kind, passes through.
    static func convert(_ object: JSON, version: String) -> JSON {
        let apiVersion = JSON.string("meta.k8s.io/" + version)
        guard let kind = object["kind"].string, kind != "Status" else { return object }
        if kind.hasSuffix("List"), let items = object["items"].array {
            return [
                "kind": "PartialObjectMetadataList", "apiVersion": apiVersion, "metadata": object["metadata"],
                "items": .array(
                    items.map {
                        ["kind": "PartialObjectMetadata", "apiVersion": apiVersion, "metadata": $0["metadata"]]
                    }),
            ]
        }
        return ["kind": "PartialObjectMetadata", "apiVersion": apiVersion, "metadata": object["metadata"]]
    }
}
