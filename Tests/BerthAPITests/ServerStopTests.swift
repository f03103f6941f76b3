import Foundation
import Testing

@testable import BerthAPI

extension APITests {
    /// Stopping the server with clients still connected. Cancellation is the hard stop (after the graceful
    /// shutdown's grace period, or a test's own stop): it must close every connection, not wait for the
    /// clients to close them — service-lifecycle ends the whole process when cancellation takes too long.
    @Suite("server stop")
    struct ServerStopTests {
        /// A TLS client that connects, optionally asks for /healthz and reads the answer, says "connected",
        /// then holds the connection open, doing nothing, until the server closes it ("closed").
        static let idleClient = """
            import socket, ssl, sys
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="127.0.0.1")
            if sys.argv[3] == "request":
                s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
                data = b""
                while not data.endswith(b"ok"):
                    data += s.recv(4096)
            print("connected", flush=True)
            while True:
                try:
                    if not s.recv(4096):
                        break
                except (ssl.SSLError, OSError):
                    break
            print("closed", flush=True)
            """

        /// One silent connection (its request head never comes) and one kept alive after a request: a
        /// cancelled server closes both and its run ends. (Hummingbird closes only the input side on
        /// cancellation, which TLS does not support; the connection then waited for its client.)
        @Test(.timeLimit(.minutes(2)))
        func cancellationClosesIdleConnections() async throws {
            let server = try await TestServer()
            var clients: [(process: Process, output: Pipe)] = []
            let (exits, exited) = AsyncStream<Void>.makeStream()
            for mode in ["silent", "request"] {
                let p = Process()
                p.terminationHandler = { _ in exited.yield() }
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["python3", "-c", Self.idleClient, String(server.port), server.dir + "/pki/ca.crt", mode]
                let out = Pipe()
                p.standardOutput = out
                p.standardInput = Pipe()  // held open: the client never sees end of input
                try p.run()
                clients.append((p, out))
            }
            defer { for c in clients where c.process.isRunning { c.process.terminate() } }
            for c in clients {
                let line = String(decoding: c.output.fileHandleForReading.availableDataUntilNewline(), as: UTF8.self)
                #expect(line == "connected\n")
            }
            let stopping = Task { await server.stop() }
            // Each client ends when the server closes its connection; were one left open, it would hold the
            // server's stop for ever: end the clients after a generous wait, so the failure is reported.
            let count = clients.count
            let closedByServer = await withTaskGroup(of: Bool.self) { g in
                g.addTask {
                    var left = count
                    for await _ in exits {
                        left -= 1
                        if left == 0 { return true }
                    }
                    return false
                }
                g.addTask {
                    try? await Task.sleep(for: .seconds(30))
                    return false
                }
                let first = await g.next() ?? false
                g.cancelAll()
                return first
            }
            if !closedByServer { for c in clients where c.process.isRunning { c.process.terminate() } }
            #expect(closedByServer, "the stopped server left a client's connection open")
            await stopping.value
            for c in clients where closedByServer {
                let rest = String(decoding: c.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(rest == "closed\n")
            }
        }
    }
}

extension FileHandle {
    /// Reads byte by byte up to and including the first newline (or end of file).
    fileprivate func availableDataUntilNewline() -> Data {
        var line = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty { return line }
            line.append(byte)
            if byte.first == 0x0a { return line }
        }
    }
}
