#if canImport(Glibc)
import Glibc
#endif
import BerthCRIProtocol
import BerthOS
import FoundationEssentials
import Testing

@testable import BerthCRI

/// Exec, attach and port-forward over SPDY/3.1 on an HTTP upgrade, as the kubelet and crictl stream
/// from a runtime: a client of the test's own (a blocking socket, the same framing code) opens the
/// streams by type and reads what comes back on each.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .criEngine("spdy"))
struct SPDYStreamingTests {
    var box: CRIBox { get throws { try #require(CRIBox.current) } }

    /// One SPDY client connection.
    final class Client {
        let fd: Int32
        let deflater = SPDYHeaderDeflater()
        var decoder = SPDYFrameDecoder(inflater: SPDYHeaderInflater())
        /// The 101's header lines.
        var responseHead = ""

        /// Connects to `url` (http://127.0.0.1:PORT/PATH) and asks for the SPDY upgrade offering `protocols`.
        init(_ url: String, protocols: [String]) throws {
            let rest = url.dropFirst("http://".count)
            let hostPort = rest.prefix { $0 != "/" }
            let path = String(rest.dropFirst(hostPort.count))
            let port = UInt16(hostPort.split(separator: ":").last ?? "") ?? 0
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else { throw TestFailure("connect: \(errno)") }
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var head = "POST \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            for name in protocols { head += "X-Stream-Protocol-Version: \(name)\r\n" }
            write(Array((head + "\r\n").utf8))
            var bytes: [UInt8] = []
            while bytes.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
                let chunk = read()
                guard !chunk.isEmpty else { break }
                bytes += chunk
            }
            guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("no response") }
            responseHead = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
            decoder.append(bytes[end.upperBound...])
        }

        deinit { close(fd) }

        func write(_ bytes: [UInt8]) {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                sent += n
            }
        }

        func read() -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            return n > 0 ? Array(buffer[0..<n]) : []
        }

        func open(_ id: UInt32, _ headers: [String: String]) {
            let body =
                SPDYFrameEncoder.bigEndian(id) + SPDYFrameEncoder.bigEndian(0) + [0, 0] + deflater.block(headers)
            write(SPDYFrameEncoder.control(1, body))
        }

        func send(_ id: UInt32, _ payload: [UInt8], fin: Bool) { write(SPDYFrameEncoder.data(id, payload, fin: fin)) }

        /// Every stream's data until the server closes the connection (or `until` holds), and which
        /// streams it finished.
        func collect(until: ([UInt32: [UInt8]]) -> Bool = { _ in false }) throws -> (
            data: [UInt32: [UInt8]], finished: Set<UInt32>
        ) {
            var data: [UInt32: [UInt8]] = [:]
            var finished: Set<UInt32> = []
            while true {
                while let frame = try decoder.next() {
                    if case .data(let id, let payload, let fin) = frame {
                        data[id, default: []] += payload
                        if fin { finished.insert(id) }
                    }
                }
                if until(data) { return (data, finished) }
                let chunk = read()
                if chunk.isEmpty { return (data, finished) }
                decoder.append(chunk)
            }
        }
    }

    func text(_ bytes: [UInt8]?) -> String { String(decoding: bytes ?? [], as: UTF8.self) }

    @Test func execOverSPDYStreamsAndReportsTheExit() async throws {
        let box = try self.box
        let config = box.sandboxConfig("spdy-exec")
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("shell", ["sleep", "1000"]))
        _ = try await box.waitFor(container, .containerRunning)

        var request = Runtime_V1_ExecRequest()
        request.containerID = container
        request.cmd = ["sh", "-c", "cat; echo err >&2; exit 7"]
        (request.stdin, request.stdout, request.stderr) = (true, true, true)
        let url = try await box.client.runtime.exec(request).url
        let client = try Client(url, protocols: ["v4.channel.k8s.io", "v3.channel.k8s.io"])
        #expect(client.responseHead.hasPrefix("HTTP/1.1 101"))
        #expect(client.responseHead.contains("X-Stream-Protocol-Version: v4.channel.k8s.io"))
        // The kubelet's client opens error first, then the others; the command starts once all are there.
        client.open(1, ["streamtype": "error"])
        client.open(3, ["streamtype": "stdin"])
        client.open(5, ["streamtype": "stdout"])
        client.open(7, ["streamtype": "stderr"])
        client.send(3, Array("piped\n".utf8), fin: true)
        let (data, finished) = try client.collect()
        #expect(text(data[5]) == "piped\n")
        #expect(text(data[7]) == "err\n")
        #expect(text(data[1]).contains("\"reason\":\"NonZeroExitCode\""), "\(text(data[1]))")
        #expect(text(data[1]).contains("\"message\":\"7\""))
        #expect(finished.isSuperset(of: [1, 5, 7]))

        // Success on v4 is a Status too; an old client (v2) hears nothing on the error stream.
        var quiet = Runtime_V1_ExecRequest()
        quiet.containerID = container
        quiet.cmd = ["echo", "fine"]
        quiet.stdout = true
        let success = try Client(try await box.client.runtime.exec(quiet).url, protocols: ["v4.channel.k8s.io"])
        success.open(1, ["streamtype": "error"])
        success.open(3, ["streamtype": "stdout"])
        let answered = try success.collect()
        #expect(text(answered.data[3]) == "fine\n")
        #expect(text(answered.data[1]) == "{\"metadata\":{},\"status\":\"Success\"}")
        let old = try Client(try await box.client.runtime.exec(quiet).url, protocols: ["v2.channel.k8s.io"])
        #expect(old.responseHead.contains("X-Stream-Protocol-Version: v2.channel.k8s.io"))
        old.open(1, ["streamtype": "error"])
        old.open(3, ["streamtype": "stdout"])
        let oldAnswer = try old.collect()
        #expect(text(oldAnswer.data[3]) == "fine\n")
        #expect((oldAnswer.data[1] ?? []).isEmpty)

        // A protocol the server does not speak over SPDY, or a spent token: refused.
        let unknown = try Client(try await box.client.runtime.exec(quiet).url, protocols: ["v9.channel.k8s.io"])
        #expect(unknown.responseHead.hasPrefix("HTTP/1.1 400"))
        let spent = try Client(url, protocols: ["v4.channel.k8s.io"])
        #expect(spent.responseHead.hasPrefix("HTTP/1.1 400"))

        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(remove)
    }

    @Test func portForwardOverSPDYReachesThePod() async throws {
        let box = try self.box
        let config = box.sandboxConfig("spdy-forward")
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(
            sandbox, config, box.containerConfig("server", ["sh", "-c", "echo hello | nc -l -p 7070"]))
        _ = try await box.waitFor(container, .containerRunning)
        var request = Runtime_V1_PortForwardRequest()
        request.podSandboxID = sandbox
        request.port = [7070]
        let url = try await box.client.runtime.portForward(request).url
        let client = try Client(url, protocols: ["portforward.k8s.io"])
        #expect(client.responseHead.contains("X-Stream-Protocol-Version: portforward.k8s.io"))
        client.open(1, ["streamtype": "error", "port": "7070", "requestid": "0"])
        client.open(3, ["streamtype": "data", "port": "7070", "requestid": "0"])
        let (data, _) = try client.collect { $0[3].map { $0.contains(UInt8(ascii: "\n")) } ?? false }
        #expect(text(data[3]) == "hello\n")

        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(remove)
    }
}
