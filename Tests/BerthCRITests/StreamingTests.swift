import BerthCRI
import BerthCRIProtocol
import BerthOS
import FoundationEssentials
import GRPCCore
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization
import Testing

/// Exec and Attach as the kubelet uses them: the RPC answers with a URL on the streaming server, and a
/// WebSocket client speaking Kubernetes' channel protocol streams there (what the node agent relays
/// kubectl to). The container's processes prove what reached them.
@Suite(.serialized, .enabled(if: isRealRoot, "runs containers: needs real root"), .criEngine("streaming"))
struct StreamingTests {
    var box: CRIBox { get throws { try #require(CRIBox.current) } }

    func remove(_ sandbox: String) async throws {
        var request = Runtime_V1_RemovePodSandboxRequest()
        request.podSandboxID = sandbox
        _ = try await box.client.runtime.removePodSandbox(request)
    }

    /// What a streaming session sent back, by channel.
    struct Received {
        var channels: [UInt8: [UInt8]] = [:]
        func text(_ channel: UInt8) -> String { String(decoding: channels[channel] ?? [], as: UTF8.self) }
    }

    /// Connects to `url` with `subprotocol`, sends `messages` (channel byte first), and collects what
    /// comes back until the server closes.
    func stream(_ url: String, subprotocol: String = "v5.channel.k8s.io", send messages: [[UInt8]]) async throws
        -> Received
    {
        let received = Mutex(Received())
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        configuration.additionalHeaders[.secWebSocketProtocol] = subprotocol
        let upstream = "ws://" + url.dropFirst("http://".count)
        let client = WebSocketClient(url: upstream, configuration: configuration, logger: Logger(label: "test")) {
            inbound, outbound, _ in
            for message in messages { try await outbound.write(.binary(ByteBuffer(bytes: message))) }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self) else {
                    continue
                }
                let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                received.withLock { $0.channels[channel, default: []] += bytes }
            }
        }
        try await client.run()
        return received.withLock { $0 }
    }

    @Test func execStreamsStdinOutputAndTheExitStatus() async throws {
        let box = try self.box
        let config = box.sandboxConfig("exec")
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("shell", ["sleep", "1000"]))
        _ = try await box.waitFor(container, .containerRunning)

        var request = Runtime_V1_ExecRequest()
        request.containerID = container
        request.cmd = ["sh", "-c", "cat; echo err >&2; exit 7"]
        (request.stdin, request.stdout, request.stderr) = (true, true, true)
        let url = try await box.client.runtime.exec(request).url
        #expect(url.hasPrefix("http://127.0.0.1:"))
        // stdin, then v5's close of stdin: cat ends, the script goes on.
        let received = try await stream(url, send: [[0] + Array("piped\n".utf8), [255, 0]])
        #expect(received.text(1) == "piped\n")
        #expect(received.text(2) == "err\n")
        let status = received.text(3)
        #expect(status.contains("\"reason\":\"NonZeroExitCode\""), "\(status)")
        #expect(status.contains("\"message\":\"7\""), "\(status)")

        // A token is spent by its first connection.
        await #expect(throws: (any Error).self) { _ = try await stream(url, send: []) }

        // Success says so on v4 too; the oldest protocol says nothing on the error channel.
        request.cmd = ["true"]
        request.stdin = false
        let v4 = try await stream(
            try await box.client.runtime.exec(request).url, subprotocol: "v4.channel.k8s.io", send: [])
        #expect(v4.text(3) == #"{"metadata":{},"status":"Success"}"#)
        let v1 = try await stream(
            try await box.client.runtime.exec(request).url, subprotocol: "channel.k8s.io", send: [])
        #expect(v1.channels[3] == nil)
        try await remove(sandbox)
    }

    @Test func execInputAndOutputBothLargerThanAPipeDoNotDeadlock() async throws {
        let box = try self.box
        let config = box.sandboxConfig("bulk")
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("shell", ["sleep", "1000"]))
        _ = try await box.waitFor(container, .containerRunning)
        var request = Runtime_V1_ExecRequest()
        request.containerID = container
        // A megabyte out before it reads a megabyte in: the relay must drain one while it feeds the other.
        request.cmd = ["sh", "-c", "head -c 1048576 /dev/zero; wc -c"]
        (request.stdin, request.stdout, request.stderr) = (true, true, true)
        let url = try await box.client.runtime.exec(request).url
        let chunk = [UInt8](repeating: 65, count: 65536)
        let received = try await stream(url, send: Array(repeating: [0] + chunk, count: 16) + [[255, 0]])
        let out = received.channels[1] ?? []
        #expect(out.count > 1_048_576)
        #expect(
            String(decoding: out.dropFirst(1_048_576), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                == "1048576")
        #expect(received.text(3).contains("Success"))
        try await remove(sandbox)
    }

    @Test func execWithATerminalResizesIt() async throws {
        let box = try self.box
        let config = box.sandboxConfig("tty")
        let sandbox = try await box.runSandbox(config)
        let container = try await box.start(sandbox, config, box.containerConfig("shell", ["sleep", "1000"]))
        _ = try await box.waitFor(container, .containerRunning)
        var request = Runtime_V1_ExecRequest()
        request.containerID = container
        request.cmd = ["sh", "-c", "read line; stty size"]
        (request.stdin, request.stdout, request.tty) = (true, true, true)
        let url = try await box.client.runtime.exec(request).url
        let received = try await stream(
            url, send: [[4] + Array(#"{"Width":101,"Height":33}"#.utf8), [0] + Array("go\r".utf8)])
        #expect(received.text(1).contains("33 101"), "\(received.text(1))")
        #expect(received.text(3).contains("Success"))
        try await remove(sandbox)
    }

    @Test func attachReachesTheRunningProcess() async throws {
        let box = try self.box
        let config = box.sandboxConfig("attach")
        let sandbox = try await box.runSandbox(config)
        var containerConfig = box.containerConfig("reader", ["sh", "-c", "read line; echo got $line; sleep 1000"])
        containerConfig.stdin = true
        let container = try await box.start(sandbox, config, containerConfig)
        _ = try await box.waitFor(container, .containerRunning)
        var request = Runtime_V1_AttachRequest()
        request.containerID = container
        (request.stdin, request.stdout, request.stderr) = (true, true, true)
        let url = try await box.client.runtime.attach(request).url
        let received = Mutex("")
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        configuration.additionalHeaders[.secWebSocketProtocol] = "v5.channel.k8s.io"
        // The process answers the line it reads; the client leaves once it has the answer.
        let client = WebSocketClient(
            url: "ws://" + url.dropFirst("http://".count), configuration: configuration, logger: Logger(label: "test")
        ) { inbound, outbound, _ in
            try await outbound.write(.binary(ByteBuffer(bytes: [0] + Array("hello\n".utf8))))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .binary(var buffer) = message, buffer.readInteger(as: UInt8.self) == 1 else { continue }
                let text = received.withLock {
                    $0 += buffer.readString(length: buffer.readableBytes) ?? ""; return $0
                }
                if text.contains("\n") { break }
            }
        }
        try await client.run()
        #expect(received.withLock { $0 } == "got hello\n")
        try await remove(sandbox)
    }

    @Test func requestsTheStreamingLibraryRefuses() async throws {
        let box = try self.box
        var request = Runtime_V1_ExecRequest()
        request.containerID = "no-such-container"
        request.cmd = ["true"]
        request.stdout = true
        await #expect { _ = try await box.client.runtime.exec(request) } throws: {
            ($0 as? RPCError)?.code == .notFound
        }
        request.stdout = false
        await #expect { _ = try await box.client.runtime.exec(request) } throws: {
            ($0 as? RPCError)?.code == .invalidArgument
        }
        var attach = Runtime_V1_AttachRequest()
        attach.containerID = "x"
        (attach.stderr, attach.tty) = (true, true)
        await #expect { _ = try await box.client.runtime.attach(attach) } throws: {
            ($0 as? RPCError)?.message == "tty and stderr cannot both be true"
        }
    }
}
