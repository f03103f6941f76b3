#if canImport(Glibc)
import Glibc
#endif
import BerthEngine
import BerthOS

/// `GET /containers/{id}/stats`: the engine's cgroup and network readings in docker's shape. Streamed,
/// one object a second until the client leaves or the container stops; `stream=false` answers with one
/// object whose `precpu_stats` is a reading taken a second earlier (so the CLI can work out a CPU %),
/// `one-shot=true` with a single reading at once.
extension DockerAPI {
    struct Stats: Encodable {
        struct CPUUsage: Encodable {
            var total_usage: UInt64
            var percpu_usage: [UInt64]?
            var usage_in_kernelmode: UInt64
            var usage_in_usermode: UInt64
        }
        struct Throttling: Encodable {
            var periods: UInt64 = 0
            var throttled_periods: UInt64 = 0
            var throttled_time: UInt64 = 0
        }
        struct CPU: Encodable {
            var cpu_usage: CPUUsage
            var system_cpu_usage: UInt64?
            var online_cpus: Int?
            var throttling_data: Throttling
        }
        struct Memory: Encodable {
            var usage: UInt64?
            var limit: UInt64?
            var stats: [String: UInt64]?
        }
        struct Network: Encodable {
            var rx_bytes: UInt64
            var rx_packets: UInt64
            var rx_errors: UInt64
            var rx_dropped: UInt64
            var tx_bytes: UInt64
            var tx_packets: UInt64
            var tx_errors: UInt64
            var tx_dropped: UInt64
        }
        struct BlkioEntry: Encodable {
            var major: UInt64
            var minor: UInt64
            var op: String
            var value: UInt64
        }
        struct Blkio: Encodable {
            var io_service_bytes_recursive: [BlkioEntry]?
        }
        struct Pids: Encodable {
            var current: UInt64?
        }
        var name: String
        var id: String
        var read: String
        var preread: String
        var pids_stats: Pids
        var blkio_stats: Blkio
        var num_procs: Int = 0
        var cpu_stats: CPU
        var precpu_stats: CPU
        var memory_stats: Memory
        var networks: [String: Network]?
    }

    /// Go's zero time, which dockerd writes for a reading never taken.
    static let zeroTime = "0001-01-01T00:00:00Z"

    struct Reading {
        var sample: StatsSample
        var time: String
    }

    func stats(_ reference: String, _ request: APIRequest, _ response: ResponseWriter) throws {
        let record = try engine.lookup(reference)
        let stream = request.flag("stream", default: true)
        let oneShot = request.flag("one-shot")
        if oneShot && stream { throw DockerAPIError.badRequest("cannot have stream=true and one-shot=true") }
        let name = "/" + record.name
        func take() -> Reading? {
            guard let now = try? engine.lookup(record.id), now.state.status == .running || now.state.status == .paused,
                let sample = try? engine.stats(record.id)
            else { return nil }
            return Reading(sample: sample, time: Timestamp.now(fixedNanoseconds: true))
        }
        func object(_ current: Reading?, _ previous: Reading?) -> Stats {
            Self.statsObject(name: name, id: record.id, current: current, previous: previous)
        }
        if !stream {
            var reading = take()
            var previous: Reading?
            if !oneShot, reading != nil, !waitASecond(response.cancellation) {
                previous = reading
                reading = take()
            }
            return response.json(object(reading, previous))
        }
        response.begin(contentType: "application/json")
        var previous: Reading?
        repeat {
            let reading = take()
            var line = JSONBody.encode(object(reading, previous))
            line.append(10)
            do { try response.write(line) } catch { break }
            // A stopped container gets one empty reading, as from dockerd, and the stream ends.
            guard reading != nil else { break }
            previous = reading
        } while !waitASecond(response.cancellation)
        response.finish()
    }

    /// Waits a second (docker's sampling interval); true if the client left meanwhile.
    private func waitASecond(_ cancellation: Cancellation) -> Bool {
        var entry = pollfd(fd: cancellation.descriptor, events: Int16(POLLIN), revents: 0)
        let deadline = Timestamp.monotonic() + 1
        while !cancellation.isCancelled {
            let left = deadline - Timestamp.monotonic()
            if left <= 0 { return false }
            _ = poll(&entry, 1, Int32(left * 1000) + 1)
        }
        return true
    }

    static func statsObject(name: String, id: String, current: Reading?, previous: Reading?) -> Stats {
        func cpu(_ reading: Reading?) -> Stats.CPU {
            guard let s = reading?.sample else {
                return Stats.CPU(
                    cpu_usage: .init(total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0),
                    throttling_data: .init())
            }
            return Stats.CPU(
                cpu_usage: .init(
                    total_usage: s.cpuUsage, percpu_usage: s.perCPUUsage.isEmpty ? nil : s.perCPUUsage,
                    usage_in_kernelmode: 0, usage_in_usermode: 0),
                system_cpu_usage: s.systemUsage, online_cpus: s.onlineCPUs, throttling_data: .init())
        }
        guard let s = current?.sample else {
            return Stats(
                name: name, id: id, read: zeroTime, preread: zeroTime, pids_stats: .init(), blkio_stats: .init(),
                cpu_stats: cpu(nil), precpu_stats: cpu(nil), memory_stats: .init())
        }
        var networks: [String: Stats.Network] = [:]
        for i in s.networkInterfaces where i.name != "lo" {
            networks[i.name] = .init(
                rx_bytes: i.receivedBytes, rx_packets: i.receivedPackets, rx_errors: i.receiveErrors,
                rx_dropped: i.receiveDropped, tx_bytes: i.sentBytes, tx_packets: i.sentPackets,
                tx_errors: i.sendErrors, tx_dropped: i.sendDropped)
        }
        return Stats(
            name: name, id: id, read: current?.time ?? zeroTime, preread: previous?.time ?? zeroTime,
            pids_stats: .init(current: s.pids),
            blkio_stats: .init(io_service_bytes_recursive: [
                .init(major: 0, minor: 0, op: "read", value: s.blockRead),
                .init(major: 0, minor: 0, op: "write", value: s.blockWritten),
            ]),
            cpu_stats: cpu(current), precpu_stats: cpu(previous),
            // The engine's usage already leaves out the inactive page cache (what docker's CLI subtracts).
            memory_stats: .init(usage: s.memoryUsage, limit: s.memoryLimit, stats: [:]),
            networks: networks.isEmpty ? nil : networks)
    }
}
