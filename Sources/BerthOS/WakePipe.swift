#if canImport(Glibc)
import Glibc
#endif

/// Wakes a relay thread blocked in poll(2) when the event loop hands it something (client input, a
/// close): `poke()` from any thread makes `descriptor` readable until the thread calls `drain()`.
/// Both ends are non-blocking, so a poke never waits and a drain never sleeps.
public final class WakePipe: @unchecked Sendable {
    private let pipe: Pipe

    public init?() {
        guard let pipe = try? Pipe() else { return nil }
        _ = fcntl(pipe.reading.rawValue, F_SETFL, O_NONBLOCK)
        _ = fcntl(pipe.writing.rawValue, F_SETFL, O_NONBLOCK)
        self.pipe = pipe
    }

    /// Poll this for POLLIN.
    public var descriptor: Int32 { pipe.reading.rawValue }

    public func poke() {
        var byte: UInt8 = 1
        _ = write(pipe.writing.rawValue, &byte, 1)
    }

    public func drain() {
        var scratch = [UInt8](repeating: 0, count: 256)
        while scratch.withUnsafeMutableBytes({ read(pipe.reading.rawValue, $0.baseAddress, $0.count) }) > 0 {}
    }
}
