#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

/// A detached thread for work that blocks: the engine's calls take file locks and wait on monitors,
/// and a wait or a followed log blocks for as long as the container runs. Neither may hold an event
/// loop or one of the few threads of Swift's cooperative pool.
enum BlockingThread {
    private final class Work {
        let name: String
        let body: () -> Void
        init(_ name: String, _ body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Runs `body` on a new detached thread named `name` (as /proc shows it: at most 15 bytes) with
    /// 1 MiB of stack (plenty for a request handler; the default 8 MiB is only address space, but a
    /// thousand waiting clients would reserve 8 GB of it).
    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let work = Unmanaged.passRetained(Work(name, body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 1 << 20)
        var thread = pthread_t()
        let result = pthread_create(
            &thread, &attributes,
            { raw in
                let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
                BlockingThread.name(work.name)
                work.body()
                return nil
            }, work)
        if result != 0 {
            // No thread to be had: do it here rather than drop the request.
            Unmanaged<Work>.fromOpaque(work).takeRetainedValue().body()
        }
    }

    /// Names the calling thread (pthread_setname_np is a GNU extension Glibc's module leaves out, and
    /// prctl is variadic): through /proc, as `ps -L` and /proc/PID/task/TID/comm then show it.
    private static func name(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

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
