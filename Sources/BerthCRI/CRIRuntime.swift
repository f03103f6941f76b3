import BerthEngine
import BerthImage
import BerthOS
import Logging
import Synchronization
import BerthCRIProtocol

/// The CRI's state over one engine: the pod sandboxes, the CRI's view of the engine's containers, and
/// where their files go. Every RPC of ``RuntimeServiceHandler`` and ``ImageServiceHandler`` lands here;
/// the blocking work runs on threads of its own (``BlockingThread``), never on the gRPC event loops.
public final class CRIRuntime: Sendable {
    public struct Settings: Sendable {
        /// Sandbox records and container configs (`<engine root>/cri`).
        public var stateRoot: String
        /// Pinned namespaces and per-pod tmpfs (`<engine run>/cri`).
        public var runRoot: String
        /// The network pods join: an engine network or a CNI configuration in the engine's CNI
        /// directories, by name. Default `bridge`, the engine's default network.
        public var network: String
        /// The runtime handler used when a sandbox names none (`runtime_handler` "").
        public var defaultRuntime: String?
        /// The node's pod network, made from the pod CIDR the kubelet gives (containerd's CNI
        /// `conf_template`): pods join it instead of ``network``, and the network is not ready until
        /// the CIDR has come. nil: pods join ``network``.
        public var podNetwork: PodNetworkTemplate?

        public init(stateRoot: String, runRoot: String, network: String = "bridge", defaultRuntime: String? = nil) {
            self.stateRoot = stateRoot
            self.runRoot = runRoot
            self.network = network
            self.defaultRuntime = defaultRuntime
        }

        /// The defaults beside an engine's own directories.
        public static func beside(_ engine: Engine) -> Settings {
            Settings(stateRoot: engine.layout.root + "/cri", runRoot: engine.layout.run + "/cri")
        }
    }

    public let engine: Engine
    public let settings: Settings
    let sandboxes: PodSandboxStore
    let containers: CRIContainerStore
    let logger: Logger
    /// The node's pod CIDR, as the kubelet last gave it (UpdateRuntimeConfig).
    let podCIDR = Mutex("")
    /// Where Exec and Attach send their clients to stream.
    let streaming = StreamingServer()
    /// The last CPU reading of each cgroup the stats RPCs read, for rates.
    let cpuReadings = CPUReadings()

    public init(engine: Engine, settings: Settings, logger: Logger = Logger(label: "berth.cri")) throws(SystemCallError)
    {
        self.engine = engine
        self.settings = settings
        self.logger = logger
        sandboxes = try PodSandboxStore(root: settings.stateRoot + "/sandboxes")
        containers = try CRIContainerStore(root: settings.stateRoot + "/containers")
    }

    /// RuntimeReady always (the engine answers); NetworkReady while the pods' network exists.
    func status(verbose: Bool) -> Runtime_V1_StatusResponse {
        var response = Runtime_V1_StatusResponse()
        var runtimeReady = Runtime_V1_RuntimeCondition()
        runtimeReady.type = "RuntimeReady"
        runtimeReady.status = true
        var networkReady = Runtime_V1_RuntimeCondition()
        networkReady.type = "NetworkReady"
        do {
            _ = try engine.networks.store.inspect(podNetworkName)
            networkReady.status = true
        } catch {
            networkReady.status = false
            networkReady.reason = "NetworkPluginNotReady"
            networkReady.message =
                "Network plugin returns error: network \(podNetworkName) is not available: \(error)"
        }
        response.status.conditions = [runtimeReady, networkReady]
        var names = [""] + engine.configuration.runtimes.keys.sorted()
        if let defaultRuntime = settings.defaultRuntime { names.append(defaultRuntime) }
        response.runtimeHandlers = Array(Set(names)).sorted().map { name in
            var handler = Runtime_V1_RuntimeHandler()
            handler.name = name
            return handler
        }
        if verbose {
            response.info = ["config": "{\"network\":\"\(podNetworkName)\",\"stateRoot\":\"\(settings.stateRoot)\"}"]
        }
        return response
    }

    /// The network sandboxes join: the node's pod network when there is a template, else the
    /// configured one.
    var podNetworkName: String { settings.podNetwork?.name ?? settings.network }

    /// Where a sandbox's namespace of `type` is pinned.
    func pinPath(_ type: String, _ sandboxID: String) -> String { "\(settings.runRoot)/\(type)ns/\(sandboxID)" }
}
