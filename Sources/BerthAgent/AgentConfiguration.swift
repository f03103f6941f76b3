import BerthJSON

/// How a node agent runs: its node's name, where its runtime is, where pods' logs and volumes go, and
/// what it tells pods about the cluster. Defaults are the kubelet's.
public struct AgentConfiguration: Sendable {
    /// The Node's name (the kubelet's --hostname-override; default the host's name, lower-cased).
    public var nodeName: String
    /// The CRI endpoint (`unix:///run/berth/cri.sock`, containerd's `unix:///run/containerd/containerd.sock`).
    public var runtimeEndpoint: String
    /// Pods' logs: `<podLogDirectory>/<namespace>_<name>_<uid>/<container>/<restart>.log`.
    public var podLogDirectory = "/var/log/pods"
    /// The agent's own state: volumes under `<rootDirectory>/pods/<uid>/volumes/…`.
    public var rootDirectory = "/var/lib/berth/agent"
    /// The cgroup every pod goes under, by QoS class (`/kubepods`, `/kubepods/burstable`, …).
    public var cgroupRoot = "/kubepods"
    /// The cluster DNS servers and domain pods with dnsPolicy ClusterFirst get (none: the node's).
    public var clusterDNS: [String] = []
    public var clusterDomain = "cluster.local"
    /// Whether the agent routes Services on its node (its service proxy: what kube-proxy does, in
    /// nftables mode). Off for hollow nodes, and where another proxy owns the machine's Service traffic.
    public var proxyServices = false
    /// Whether the agent enforces NetworkPolicies on its pods (nftables, beside the service proxy).
    public var enforceNetworkPolicies = false
    /// Whether the agent answers the cluster DNS on its node, at the first of ``clusterDNS`` (put on a
    /// dummy interface of the node's own).
    public var serveClusterDNS = false
    /// Pods' addresses (kube-proxy's --cluster-cidr): traffic to a cluster IP from outside it is
    /// masqueraded; nil: only a pod reaching itself through its Service is.
    public var clusterCIDR: String?
    /// How this node's pods reach other nodes' (routes by ``PodNetworkBackend``), once the Node has a
    /// pod CIDR that the runtime makes its pod network on; nil: the agent leaves the runtime's network
    /// as it is and programs no routes.
    public var podNetworkBackend: PodNetworkBackend?
    /// What the node keeps for itself (`--system-reserved cpu=500m,memory=1Gi`), less from allocatable.
    public var systemReserved: [String: String] = [:]
    /// Whether the agent lets go of its start-up code pages once its pods are listed, and of a burst's
    /// once the node's pods have settled (`berth agent`, a process of its own; not an agent sharing a
    /// process with an API server or with hollow nodes).
    public var releasesStartupCode = false
    /// Pods the node takes (the kubelet's --max-pods).
    public var maxPods = 110
    /// Pods synced at once. The kubelet gives every pod a worker of its own; a bound keeps a burst of
    /// pods from starting hundreds of tasks, while a runtime whose sandboxes take a second (containerd's
    /// CNI set-up) still starts many at a time.
    public var podWorkers = 32
    /// The node Lease's duration (the kubelet's nodeLeaseDurationSeconds, 40), renewed every quarter
    /// of it as the kubelet does: a control plane that declares nodes dead sooner (a shorter
    /// --node-monitor-grace-seconds) needs nodes that renew sooner.
    public var leaseDurationSeconds = 40
    /// How often the Lease is renewed (the kubelet's 10 s: a quarter of ``leaseDurationSeconds``).
    public var leaseInterval: Duration = .seconds(10)
    /// How often the node's status is posted when nothing changed (the kubelet's 5 min, 10 s on change).
    public var statusInterval: Duration = .seconds(60)
    /// Image garbage collection (the kubelet's flags of the same names): above the high threshold of the
    /// image filesystem's use, unused images older than the minimum age go until the low one is reached.
    public var imageGCHighThresholdPercent = 85
    public var imageGCLowThresholdPercent = 80
    public var imageMinimumGCAge: Duration = .seconds(120)
    public var imageGCInterval: Duration = .seconds(300)
    /// How often the node's and pods' resource use is sampled for `/stats/summary` (cAdvisor's 10 s).
    public var statsInterval: Duration = .seconds(10)
    /// Static pods' manifests (the kubelet's --pod-manifest-path; nil: none), read again on every change
    /// and every `fileCheckFrequency` (the kubelet's --file-check-frequency, 20 s).
    public var podManifestPath: String?
    public var fileCheckFrequency: Duration = .seconds(20)
    /// Hard eviction thresholds (the kubelet's --eviction-hard; its defaults: memory.available<100Mi,
    /// nodefs.available<10%, nodefs.inodesFree<5%, imagefs.available<15%), how long a pressure condition
    /// outlives its threshold (--eviction-pressure-transition-period, 5 min), and how often the signals
    /// are observed (the kubelet's fixed 10 s).
    public var evictionHard: [EvictionThreshold] = EvictionThreshold.defaults
    public var evictionPressureTransitionPeriod: Duration = .seconds(300)
    public var evictionMonitoringInterval: Duration = .seconds(10)
    /// How often the runtime's Status is asked (the kubelet's 5 s): a runtime that is down makes the
    /// node NotReady.
    public var runtimeCheckInterval: Duration = .seconds(5)
    /// The address the Node reports (InternalIP); default the first non-loopback IPv4 address.
    public var nodeIP: String?
    /// The address the Node reports: ``nodeIP`` or the machine's first non-loopback IPv4 address.
    public var internalIP: String { NodeFacts.address(nodeIP: nodeIP) }
    /// Labels the Node registers with, beside the kubelet's own (the kubelet's --node-labels).
    public var nodeLabels: [String: String] = [:]
    /// The node's pod CIDR when registration gives it (the kubelet's --pod-cidr; hollow nodes, as
    /// kwok's and kubemark's registrations do); nil: the Node's spec leaves it to the cluster.
    public var podCIDR: String?
    /// A hollow node (kubemark's design): its pods go through this agent's code over a fake runtime that
    /// runs nothing, so nothing may reach the host for them either — network probes and httpGet hooks
    /// (whose pod addresses are made up) succeed without traffic, as a healthy container would answer,
    /// and memory-backed emptyDirs are plain directories (kubemark's fake mounter).
    public var hollow = false
    /// The agent's HTTPS API for the API server (logs, exec, attach); nil: none (the Node then
    /// reports port 0, so nothing tries it).
    public var server: AgentServerSettings?

    public init(nodeName: String, runtimeEndpoint: String) {
        self.nodeName = nodeName
        self.runtimeEndpoint = runtimeEndpoint
    }
}

/// Where and how the agent serves its HTTPS API (the kubelet's --address, --port and certificates).
public struct AgentServerSettings: Sendable {
    public var address = "0.0.0.0"
    public var port = 10250
    /// The agent's serving certificate and key (PEM).
    public var certificatePEM: String
    public var keyPEM: String
    /// The CA client certificates must come from (the cluster's).
    public var clientCAPEM: String

    public init(certificatePEM: String, keyPEM: String, clientCAPEM: String) {
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        self.clientCAPEM = clientCAPEM
    }
}

extension AgentConfiguration {
    /// The Node as the node's events name it (the kubelet's node reference: its UID is the node's name).
    var nodeReference: JSON {
        ["apiVersion": "v1", "kind": "Node", "metadata": ["name": .string(nodeName), "uid": .string(nodeName)]]
    }
}
