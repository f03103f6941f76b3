#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import FoundationEssentials

extension BlockingThread {
    /// Runs async work (the image service's pull) from a blocking thread and waits for its result.
    /// The work's task is cancelled when `cancellation` is (the client went away): the thread waits
    /// for it to wind down rather than leave it running for nobody.
    static func await<T: Sendable>(
        cancellation: Cancellation? = nil, _ body: @escaping @Sendable () async throws -> T
    ) throws -> T {
        let box = ResultBox<T>()
        let task = Task {
            do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
        }
        cancellation?.onCancel { task.cancel() }
        return try box.wait().get()
    }
}

/// One result handed from a task to a waiting thread.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var result: Result<T, any Error>?

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&condition)
    }

    func set(_ value: Result<T, any Error>) {
        pthread_mutex_lock(&mutex)
        result = value
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func wait() -> Result<T, any Error> {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while result == nil { pthread_cond_wait(&condition, &mutex) }
        return result!
    }
}

enum JSONEncoderFactory {
    static func make() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
