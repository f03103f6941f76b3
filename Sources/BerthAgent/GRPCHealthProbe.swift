import BerthCRIProtocol
import GRPCCore
import GRPCNIOTransportHTTP2

/// A container's `grpc` probe, as the kubelet's prober makes it: the gRPC health protocol's Check
/// (grpc.health.v1.Health) on the pod's address and the probe's port, in plaintext, for the probe's
/// `service` ("" asks for the server as a whole); only SERVING succeeds. The messages are the kubelet's.
enum GRPCHealthProbe {
    static func check(host: String, port: Int, service: String, timeout: Int64) async -> (Bool, String) {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard (1...65535).contains(port) else { return (false, "port \(port) is not a valid port") }
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: host.contains(":") ? .ipv6(address: host, port: port) : .ipv4(address: host, port: port),
                transportSecurity: .plaintext)
            return try await withGRPCClient(transport: transport) { client in
                var options = CallOptions.defaults
                options.timeout = .seconds(timeout)
                // A server that does not answer fails the probe now rather than waiting out the timeout
                // for a connection that may come later (the next period tries again).
                options.waitForReady = false
                var request = Grpc_Health_V1_HealthCheckRequest()
                request.service = service
                do {
                    let response = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                        request, options: options)
                    guard response.status == .serving else {
                        return (false, "service unhealthy (responded with \"\(name(of: response.status))\")")
                    }
                    return (true, "service is serving")
                } catch let error as RPCError {
                    switch error.code {
                    case .unimplemented:
                        return (
                            false,
                            "this server does not implement the grpc health protocol (grpc.health.v1.Health): "
                                + error.message
                        )
                    case .deadlineExceeded:
                        return (false, "timeout: health rpc did not complete within \(timeout)s")
                    case .unavailable:
                        return (false, "error: failed to connect service at \"\(address)\": \(error.message)")
                    default:
                        return (false, "error: health rpc probe failed: \(error.code): \(error.message)")
                    }
                }
            }
        } catch {
            return (false, "error: failed to connect service at \"\(address)\": \(error)")
        }
    }

    /// The status as the proto names it (what the kubelet's message quotes).
    static func name(of status: Grpc_Health_V1_HealthCheckResponse.ServingStatus) -> String {
        switch status {
        case .unknown: return "UNKNOWN"
        case .serving: return "SERVING"
        case .notServing: return "NOT_SERVING"
        case .serviceUnknown: return "SERVICE_UNKNOWN"
        case .UNRECOGNIZED(let value): return "\(value)"
        }
    }
}
