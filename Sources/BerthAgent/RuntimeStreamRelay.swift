import BerthAPI
import BerthCRI
import BerthJSON
import HummingbirdWebSocket
import Logging
import NIOCore

/// Between the API server's WebSocket (kubectl's channel protocol, v5 down to v1, or port-forward's
/// SPDY tunnelled in binary messages) and the runtime's streaming URL over SPDY/3.1, as the kubelet
/// streams from any CRI runtime. Exec and attach are translated: channels to streams and back, v5's
/// close of stdin to the stdin stream's FIN, the error stream's Status to the error channel.
/// Port-forward needs no translation: the tunnelled frames and the upgraded connection's bytes are the
/// same SPDY session, relayed as they are.
enum RuntimeStreamRelay {
    /// Which streams a remote command has (the kubelet API's query).
    struct Streams: Sendable {
        var stdin: Bool
        var stdout: Bool
        var stderr: Bool
        var tty: Bool
    }

    static func remoteCommand(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, url: String, subprotocol: String,
        streams: Streams, logger: Logger
    ) async {
        do {
            try await SPDYClient.withUpgrade(url: url, protocols: SPDYRemoteCommand.protocols) {
                upgraded, rest, spdyOut in
                let version =
                    upgraded.negotiated.flatMap { name in
                        name.hasPrefix("v") ? Int(name.dropFirst().prefix { $0.isNumber }) : 1
                    } ?? 1
                let session = SPDYClientSession(outbound: spdyOut)
                // The kubelet's order: error first, then the others the command has.
                let errorStream = try await session.open(["streamtype": "error"])
                let stdinStream = streams.stdin ? try await session.open(["streamtype": "stdin"]) : nil
                let stdoutStream = streams.stdout ? try await session.open(["streamtype": "stdout"]) : nil
                let stderrStream =
                    streams.stderr && !streams.tty ? try await session.open(["streamtype": "stderr"]) : nil
                let resizeStream =
                    streams.tty && version >= 3 ? try await session.open(["streamtype": "resize"]) : nil
                let events = session.events(leftover: upgraded.leftover, inbound: rest)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var errorBytes: [UInt8] = []
                        do {
                            for try await event in events {
                                guard case .data(let id, let payload, _) = event else { continue }
                                let channel: UInt8
                                switch id {
                                case stdoutStream: channel = 1
                                case stderrStream: channel = 2
                                case errorStream:
                                    errorBytes += payload
                                    continue
                                default: continue
                                }
                                guard !payload.isEmpty else { continue }
                                var message = ByteBuffer()
                                message.writeInteger(channel)
                                message.writeBytes(payload)
                                guard (try? await outbound.write(.binary(message))) != nil else { return }
                            }
                        } catch {
                            logger.debug("stream from the runtime ended: \(error)")
                        }
                        if !errorBytes.isEmpty {
                            var message = ByteBuffer()
                            message.writeInteger(UInt8(3))
                            message.writeBytes(errorBytes)
                            try? await outbound.write(.binary(message))
                        }
                    }
                    group.addTask {
                        var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                        while let message = try? await messages.next() {
                            guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self)
                            else { continue }
                            let payload = buffer.readBytes(length: buffer.readableBytes) ?? []
                            switch channel {
                            case 0:
                                if let stdinStream { try? await session.send(stdinStream, payload, fin: false) }
                            case 4:
                                if let resizeStream { try? await session.send(resizeStream, payload, fin: false) }
                            case 255 where payload.first == 0:
                                if let stdinStream { try? await session.send(stdinStream, [], fin: true) }
                            default: break
                            }
                        }
                        // The client went (a WebSocket has no half-close): its stdin ends, and the relay.
                        if let stdinStream { try? await session.send(stdinStream, [], fin: true) }
                    }
                    // Either side ending ends the relay (the runtime's connection closes with it).
                    await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.notice("streaming from the runtime at \(WebSocketRelay.redacted(url)): \(error)")
            let status = APIError.internalError("unable to upgrade connection: \(error)").status
            await WebSocketRelay.fail(outbound, status: status, protocol: subprotocol)
        }
    }

    static func portForward(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, url: String, subprotocol: String,
        logger: Logger
    ) async {
        do {
            try await SPDYClient.withUpgrade(url: url, protocols: ["portforward.k8s.io"]) { upgraded, rest, spdyOut in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        if upgraded.leftover.readableBytes > 0 {
                            guard (try? await outbound.write(.binary(upgraded.leftover))) != nil else { return }
                        }
                        do {
                            for try await chunk in rest {
                                guard (try? await outbound.write(.binary(chunk))) != nil else { return }
                            }
                        } catch {}
                    }
                    group.addTask {
                        var messages = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
                        while let message = try? await messages.next() {
                            guard case .binary(let buffer) = message else { continue }
                            guard (try? await spdyOut.write(buffer)) != nil else { return }
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.notice("port-forward from the runtime at \(WebSocketRelay.redacted(url)): \(error)")
            let status = APIError.internalError("unable to upgrade connection: \(error)").status
            await WebSocketRelay.fail(outbound, status: status, protocol: subprotocol)
        }
    }
}
