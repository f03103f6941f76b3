#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// An exclusive flock(2) on a file, held while `body` runs: two `berth` processes (or threads) never
/// read-modify-write the same state at once. The lock dies with the descriptor, so a crashed process
/// never leaves it held.
enum FileLock {
    static func withLock<T>(_ path: String, _ body: () throws(NetworkError) -> T) throws(NetworkError) -> T {
        let fd: FileDescriptor
        do {
            try FileSystem.makeDirectories(FileSystem.parent(of: path), mode: 0o700)
            fd = try FileDescriptor.open(path, O_RDWR | O_CREAT, mode: 0o600)
            _ = try sys("flock", path) { flock(fd.rawValue, LOCK_EX) }
        } catch {
            throw .system(error)
        }
        defer { fd.close() }
        return try body()
    }
}
