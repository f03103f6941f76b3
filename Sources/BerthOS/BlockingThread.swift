#if canImport(Glibc)
import Glibc
#endif

/// A detached thread for work that blocks: the engine's calls take file locks and wait on monitors,
/// and a wait or a followed log blocks for as long as the container runs. Neither may hold an event
/// loop or one of the few threads of Swift's cooperative pool.
public enum BlockingThread {
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
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
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

    /// Runs blocking `body` on a thread of its own and suspends the caller until it returns: the
    /// async side's door to the engine's blocking calls (the CRI's handlers).
    public static func run<T: Sendable, E: Error>(
        name: String, _ body: @escaping @Sendable () throws(E) -> T
    ) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            start(name: name) {
                do throws(E) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
