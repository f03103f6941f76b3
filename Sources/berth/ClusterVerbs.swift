import ArgumentParser
import BerthAPI
import Foundation
import Logging

/// Control-plane verbs (server, …), owned by the API layer.
let clusterVerbs: [any ParsableCommand.Type] = [ClusterServer.self]

/// `berth server`: the Kubernetes-compatible API server.
struct ClusterServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Kubernetes-compatible API server (SQLite by default, or etcd).")

    @Option(help: "Directory for the database, PKI, tokens and admin kubeconfig.")
    var dataDir: String = "/var/lib/berth/server"
    @Option(help: "Datastore: sqlite (embedded, default) or etcd.")
    var datastore: String = "sqlite"
    @Option(help: "Comma-separated etcd client URLs (with --datastore etcd).")
    var etcdEndpoints: String = "http://127.0.0.1:2379"
    @Option(help: "Address to listen on, host:port.")
    var listen: String = "127.0.0.1:6443"
    @Option(help: "CIDR that Service cluster IPs are allocated from.")
    var serviceCIDR: String = "10.96.0.0/12"
    @Option(help: "NodePort range, e.g. 30000-32767.")
    var nodePortRange: String = "30000-32767"
    @Option(help: "Extra names/IPs for the serving certificate (comma-separated).")
    var tlsSAN: String = ""
    @Option(help: "Seconds between watch bookmarks.")
    var bookmarkSeconds: Int = 5
    @Option(help: "Identity in leader election (default hostname_port).")
    var identity: String?
    @Option(help: "Leader-election lease duration in seconds.")
    var leaseSeconds: Int = 3
    @Flag(inversion: .prefixedNo, help: "Take part in leader election for the scheduler and controllers.")
    var leaderElect = true
    @Option(help: "Log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"

    func run() async throws {
        var config = ServerConfig(dataDir: dataDir)
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port")
        }
        config.host = String(listen[..<colon])
        config.port = port
        guard let ds = ServerConfig.Datastore(rawValue: datastore) else { throw ValidationError("--datastore must be sqlite or etcd") }
        config.datastore = ds
        config.etcdEndpoints = etcdEndpoints.split(separator: ",").map(String.init)
        config.serviceCIDR = serviceCIDR
        let range = nodePortRange.split(separator: "-").compactMap { Int($0) }
        guard range.count == 2, range[0] <= range[1] else { throw ValidationError("--node-port-range must be lo-hi") }
        config.nodePortRange = range[0]...range[1]
        config.tlsSANs = tlsSAN.split(separator: ",").map(String.init)
        config.bookmarkInterval = .seconds(bookmarkSeconds)
        config.identity = identity
        config.leaseDuration = .seconds(leaseSeconds)
        config.leaderElect = leaderElect
        var logger = Logger(label: "berth.server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let server = try APIServer(config: config, logger: logger)
        let kubeconfig = try server.writeKubeconfig()
        logger.info("berth server", metadata: ["url": "\(server.url)", "kubeconfig": "\(kubeconfig)", "datastore": "\(datastore)"])
        try await server.run(onReady: { port in
            // One line on stdout when ready, for scripts.
            FileHandle.standardOutput.write(Data("ready \(port)\n".utf8))
        })
    }
}
