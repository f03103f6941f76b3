import Hummingbird
import NIOCore

/// A streamed response body whose producer is cancelled when the client's connection closes.
/// Hummingbird does not cancel a handler when its client goes, and a follower of a quiet source (a
/// `kubectl logs -f` of a container that prints nothing) would otherwise wait for the source to end,
/// holding its connection, thread and file descriptors for nobody. The chunks between producer and
/// writer are not bounded: a client that stays connected without reading lets them grow (noted as a
/// limitation; kubectl reads as fast as it is sent).
public enum ClosingStream {
    public static func body(
        channel: (any Channel)?,
        produce: @escaping @Sendable (AsyncStream<ByteBuffer>.Continuation) async throws -> Void
    ) -> ResponseBody {
        ResponseBody { writer in
            let (chunks, continuation) = AsyncStream<ByteBuffer>.makeStream()
            let producer = Task {
                defer { continuation.finish() }
                try await produce(continuation)
            }
            channel?.closeFuture.whenComplete { _ in producer.cancel() }
            defer { producer.cancel() }
            for await chunk in chunks { try await writer.write(chunk) }
            try await writer.finish(nil)
        }
    }
}
