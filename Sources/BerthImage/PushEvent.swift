/// One step of a push, as ``ImageService/push(_:to:events:)`` reports it.
public enum PushEvent: Sendable, CustomStringConvertible {
    /// The push began: these layers (in order) go to `target`.
    case started(Reference, layers: [Digest])
    /// The registry had the blob already.
    case blobExists(Digest)
    /// The registry mounted the blob from another repository of its own.
    case blobMounted(Digest, from: String)
    case blobPushed(Digest, size: Int64)
    /// The manifest is in place under the target's tag: the push is complete.
    case manifestPushed(Reference, digest: Digest, size: Int)

    /// The line `berth push` prints for the step.
    public var description: String {
        switch self {
        case .started(let target, _): return "pushing to \(target)"
        case .blobExists(let digest): return "\(digest.shortID): already exists"
        case .blobMounted(let digest, let repository): return "\(digest.shortID): mounted from \(repository)"
        case .blobPushed(let digest, let size): return "\(digest.shortID): pushed \(size) bytes"
        case .manifestPushed(let target, let digest, let size): return "\(target): digest: \(digest) size: \(size)"
        }
    }
}
