#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Runs the second half of a stream on its own thread: the producer (decompression) copies bytes into
/// a small pool of buffers, the consumer (DiffID hash, tar parsing, file writes) drains them. This is
/// what `tar xzf` gets from running gzip as a separate process: inflate and writes overlap.
final class BackgroundStage: @unchecked Sendable {
    private let capacity = 1 << 20
    private let buffers: [UnsafeMutableRawBufferPointer]
    private var filling: Int?
    private var filled = 0
    private let free: DispatchSemaphore
    private let ready = DispatchSemaphore(value: 0)
    private let queue = Mutex<[(index: Int, count: Int)]>([])
    private let failure = Mutex<(any Error)?>(nil)
    private let done = DispatchSemaphore(value: 0)
    private let freeIndexes: Mutex<[Int]>
    private let consume: (UnsafeRawBufferPointer) throws -> Void

    init(depth: Int = 6, consume: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        buffers = (0..<depth).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64) }
        free = DispatchSemaphore(value: depth)
        freeIndexes = Mutex(Array(0..<depth))
        self.consume = consume
        let thread = Thread { [self] in run() }
        thread.start()
    }

    deinit {
        for b in buffers { b.deallocate() }
    }

    private func run() {
        while true {
            ready.wait()
            guard let item = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            if item.index < 0 { break }
            if failure.withLock({ $0 == nil }) {
                do { try consume(UnsafeRawBufferPointer(rebasing: buffers[item.index][0..<item.count])) } catch {
                    failure.withLock { $0 = error }
                }
            }
            freeIndexes.withLock { $0.append(item.index) }
            free.signal()
        }
        done.signal()
    }

    /// Copies `bytes` into the pipeline (blocks while all buffers are in flight).
    func push(_ bytes: UnsafeRawBufferPointer) throws {
        if let error = failure.withLock({ $0 }) { throw error }
        var offset = 0
        while offset < bytes.count {
            if filling == nil {
                free.wait()
                filling = freeIndexes.withLock { $0.removeLast() }
                filled = 0
            }
            let take = min(capacity - filled, bytes.count - offset)
            (buffers[filling!].baseAddress! + filled).copyMemory(from: bytes.baseAddress! + offset, byteCount: take)
            filled += take
            offset += take
            if filled == capacity { submit() }
        }
    }

    private func submit() {
        guard let index = filling else { return }
        queue.withLock { $0.append((index, filled)) }
        filling = nil
        ready.signal()
    }

    /// Flushes, waits for the consumer to finish, and rethrows its error.
    func close() throws {
        if filling != nil && filled > 0 {
            submit()
        } else if let index = filling {
            freeIndexes.withLock { $0.append(index) }; filling = nil; free.signal()
        }
        queue.withLock { $0.append((-1, 0)) }
        ready.signal()
        done.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }
}

/// A plain thread (the consumer blocks on I/O; it should not sit on the cooperative pool).
final class Thread: @unchecked Sendable {
    private let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
    func start() {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let box = Unmanaged.passRetained(self).toOpaque()
        var handle = pthread_t()
        pthread_create(
            &handle, &attributes,
            { raw in
                let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                thread.body()
                return nil
            }, box)
        pthread_attr_destroy(&attributes)
    }
}
