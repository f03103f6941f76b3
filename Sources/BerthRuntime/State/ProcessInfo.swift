#if canImport(Glibc)
import Glibc
#endif
import BerthOS

extension ContainerRecord {
    /// Whether the recorded init process is still the same live process (not reused, not a zombie).
    public var initIsAlive: Bool {
        ProcessStat.isAlive(pid: pid, startTime: pidStartTime)
    }
}
