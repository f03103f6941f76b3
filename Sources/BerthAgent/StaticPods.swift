#if canImport(Glibc)
import Glibc
#endif
import BerthAPI
import BerthKube
import BerthOS
import Foundation
import Logging
import Synchronization

/// Static pods: the pods the node runs from manifest files in `--pod-manifest-path` (the kubelet's
/// file source), whatever the API server says or whether it answers. The directory is read again when
/// inotify reports a change in it and every `fileCheckFrequency` (20 s) regardless; a file's pod is
/// ``StaticPodManifest``'s. A pod whose file is removed, or whose file changed (a new UID), is
/// *retired*: the agent terminates that version before it runs the next one or forgets the pod.
final class StaticPods: Sendable {
    struct State {
        var current: [String: CoreV1.Pod] = [:]
        var retired: [String: CoreV1.Pod] = [:]
        /// The last complaint per file, so a bad file is logged once per change, not every scan.
        var complaints: [String: String] = [:]
    }
    let directory: String?
    let nodeName: String
    let logger: Logger
    private let state = Mutex(State())

    init(directory: String?, nodeName: String, logger: Logger) {
        self.directory = directory.flatMap { $0.isEmpty ? nil : $0 }
        self.nodeName = nodeName
        self.logger = logger
    }

    func pod(_ key: String) -> CoreV1.Pod? { state.withLock { $0.current[key] } }
    func pod(namespace: String, name: String) -> CoreV1.Pod? { pod(namespace + "/" + name) }
    var all: [CoreV1.Pod] { state.withLock { Array($0.current.values) } }
    /// The version of the pod at `key` that must be terminated first, if any.
    func retired(_ key: String) -> CoreV1.Pod? { state.withLock { $0.retired[key] } }
    func forgetRetired(_ key: String, uid: String) {
        state.withLock { if $0.retired[key]?.metadata.uid == uid { $0.retired[key] = nil } }
    }

    /// Reads the directory and returns the keys whose pod appeared, changed or went.
    func scan() -> Set<String> {
        guard let directory else { return [] }
        var found: [String: CoreV1.Pod] = [:]
        var complaints: [String: String] = [:]
        let names = ((try? FileSystem.listDirectory(directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        for name in names {
            let path = directory + "/" + name
            guard !FileSystem.isDirectory(path) else { continue }
            do {
                let contents = try String(contentsOfFile: path, encoding: .utf8)
                let pod = try StaticPodManifest.pod(contents: contents, path: path, nodeName: nodeName)
                let key = pod.cacheKey
                if found[key] != nil {
                    complaints[path] = "\(path): a pod named \(key) is already read from another file; ignored"
                    continue
                }
                found[key] = pod
            } catch {
                complaints[path] = "\(error)"
            }
        }
        return state.withLock { state in
            for (path, complaint) in complaints where state.complaints[path] != complaint {
                logger.error("could not read a static pod manifest", metadata: ["error": "\(complaint)"])
            }
            state.complaints = complaints
            var changed: Set<String> = []
            for (key, old) in state.current where found[key]?.metadata.uid != old.metadata.uid {
                // Terminated before the next version runs (an older retired one is already being handled).
                if state.retired[key] == nil { state.retired[key] = old }
                changed.insert(key)
            }
            for key in found.keys where state.current[key] == nil { changed.insert(key) }
            state.current = found
            return changed
        }
    }

    /// Scans until cancelled: at once, on every change inotify reports in the directory, and every
    /// `period` regardless (a directory made later, or a change inotify missed).
    func watch(period: Duration, onChange: @escaping @Sendable (Set<String>) async -> Void) async {
        guard let directory else { return }
        let inotify = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        defer { if inotify >= 0 { close(inotify) } }
        var watching = false
        var lastScan = ContinuousClock.now
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF)
        await onChange(scan())
        while !Task.isCancelled {
            if !watching && inotify >= 0 { watching = inotify_add_watch(inotify, directory, mask) >= 0 }
            // A second at most in the kernel, so cancellation is noticed.
            let fd = inotify
            let woke = await BlockingThread.run(name: "static-pods") { () -> Wake in
                guard fd >= 0 else {
                    usleep(1_000_000)
                    return .quiet
                }
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 1000) == 1 else { return .quiet }
                var scratch = [UInt8](repeating: 0, count: 4096)
                var wake = Wake.changed
                while true {
                    let n = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    guard n > 0 else { break }
                    if scratch[0..<n].withUnsafeBytes({ Self.hasIgnored($0) }) { wake = .watchGone }
                }
                return wake
            }
            // The directory removed (IN_IGNORED): watched again once it exists, meanwhile scanned by period.
            if woke == .watchGone { watching = false }
            if woke != .quiet || ContinuousClock.now - lastScan >= period {
                lastScan = .now
                let changed = scan()
                if !changed.isEmpty { await onChange(changed) }
            }
        }
    }

    enum Wake: Sendable { case quiet, changed, watchGone }

    /// Whether an inotify read holds an IN_IGNORED event (its watch is gone).
    static func hasIgnored(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= bytes.count {
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
            if mask & UInt32(IN_IGNORED) != 0 { return true }
            offset += header + Int(length)
        }
        return false
    }
}
