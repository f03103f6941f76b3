#!/usr/bin/env python3
"""Pod startup benchmark (issue 12): a one-node `berth server` (API server and agent in one process, the
image already in the runtime's store) gets 100 pods created through the API at 10 per second and then at
50 per second; each pod's latency is from its create call returning to the watch seeing it Running (the
Kubernetes pod-startup SLI without image pulls). The same agent runs them on Berth's engine (in the
server's process) and on Debian's containerd 1.6 through its CRI (scripts/containerd-cri.sh), side by
side. Prints p50/p99 per runtime and rate, the server's RSS (API server and agent) and the runtime's
(containerd and its shims, or the engine's container monitors; PSS, shared pages split) with the last round's pods running.

Then the node's memory with 110 pods (issue 12: agent at most 40 MB RSS), the agent as a process of its
own as on a worker node: `berth server --disable-agent`, the runtime (`berth engine --cri-socket`, or
containerd) and `berth agent --container-runtime-endpoint` (with its HTTPS API, a serving certificate from
the cluster CA), 110 pods created at 20 per second; with all of them Running (and again 30 s later) the
agent's RSS (with its anonymous part and its PSS: most of a static binary's RSS is its own file's pages,
shared with the engine and server that run the same file), the runtime's (the engine, or containerd),
its monitors' or shims' PSS and the API server's RSS.

Usage: BERTH=.build/release/berth python3 scripts/bench-pods.py
       (root; N=100, RATES="10 50", RUNTIMES="berth containerd"; containerd needs the Debian package;
       AGENT_PODS=110 pods for the agent's memory, 0 to skip it; RATES= for that part alone; SETTLE=30;
       STORE=ext4|host|tmpfs: where every runtime's store, the CNI state and the logs are, see benchcri.Store)
"""
import http.client, json, os, signal, socket, ssl, statistics, subprocess, sys, tempfile, threading, time

from benchcri import Store, free_port, remove_leftovers, sh, start_registry, terminate

here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
N = int(os.environ.get("N", "100"))
RATES = [int(r) for r in os.environ.get("RATES", "10 50").split()]
RUNTIMES = os.environ.get("RUNTIMES", "berth containerd").split()
AGENT_PODS = int(os.environ.get("AGENT_PODS", "110"))
SETTLE = int(os.environ.get("SETTLE", "30"))
store = Store("berth-bench-pods-")
work = store.path
procs = []


def rss_kb(pid, field="VmRSS"):
    """VmRSS (or RssAnon: the heap and stacks, without the binary's pages) from /proc/PID/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def busy_seconds():
    """CPU time the whole host has spent busy (all cores, /proc/stat), in seconds."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def pss_kb(pid):
    """Proportional set size: shared pages split among their sharers (many monitors or shims share most)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def runtime_processes(runtime):
    """The pids of this benchmark's containerd shims, or of the engine's container monitors."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = open(f"/proc/{entry}/comm").read().strip()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if runtime == "containerd" and comm.startswith("containerd-shim") and work.encode() in cmdline:
            pids.append(int(entry))
        if runtime == "berth" and comm == "berth-monitor" and work.encode() in cmdline:
            pids.append(int(entry))
    return pids


def runtime_rss_kb(runtime, containerd_pid):
    """The runtime's own processes (PSS): containerd and its shims, or the engine's container monitors."""
    total = pss_kb(containerd_pid) if containerd_pid else 0
    return total + sum(pss_kb(pid) for pid in runtime_processes(runtime))


class API:
    def __init__(self, port, pki, timeout=120, retries=0):
        self.context = ssl.create_default_context(cafile=f"{pki}/ca.crt")
        self.context.load_cert_chain(f"{pki}/admin.crt", f"{pki}/admin.key")
        self.port = port
        self.timeout, self.retries = timeout, retries
        self.retried = 0

    def connection(self, timeout=120):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=timeout)

    def call(self, method, path, body=None):
        """One request; with `retries`, a request unanswered in `timeout` is sent again on a new
        connection (a create or delete that went through the first time then answers 409 or 404, taken
        as done)."""
        for attempt in range(self.retries + 1):
            c = self.connection(self.timeout)
            try:
                c.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
            except TimeoutError:
                if attempt == self.retries:
                    raise
                self.retried += 1
                continue
            finally:
                c.close()
            if attempt > 0 and (method, r.status) in (("POST", 409), ("DELETE", 404)):
                return None
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
            return json.loads(data) if data else None


def delete_pods(api, names, seconds):
    """Deletes the pods and waits (up to `seconds`) until the API lists none in default."""
    for name in names:
        api.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
    for _ in range(int(seconds / 0.2)):
        if not api.call("GET", "/api/v1/namespaces/default/pods")["items"]:
            break
        time.sleep(0.2)


def main():
    print(f"store: {store.describe()} ({work})")
    env = dict(os.environ, BERTH_RUN=f"{work}/run")
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    sh(berth, "image", "import", "--root", f"{work}/engine", f"{images}/busybox/layer1.tar.gz", "-t",
       "bench/busybox:1", env=env)
    if RATES:
        print("| runtime | rate (pods/s) | pods | p50 create→Running | p99 | max | host CPU per pod | server RSS "
              "| runtime PSS |")
        print("|---|---|---|---|---|---|---|---|---|")
        for runtime in RUNTIMES:
            run(runtime, env)
        sys.stdout.flush()
    if AGENT_PODS > 0:
        print(f"\nThe agent as a process of its own, {AGENT_PODS} pods on its node (memory in MB; target: agent ≤ 40 MB RSS)")
        print("| runtime | pods Running | create→all Running | agent RSS idle | agent RSS, all Running "
              f"| agent RSS {SETTLE} s later | runtime RSS | monitors/shims PSS | API server RSS |")
        print("|---|---|---|---|---|---|---|---|---|")
        for runtime in RUNTIMES:
            run_separate_agent(runtime, env)
        sys.stdout.flush()


containerd_started = {}


def containerd_runtime():
    """containerd's CRI (started once), the busybox image pulled into it: (image, pid, endpoint)."""
    if not containerd_started:
        registry = start_registry(work, procs)
        sh(os.path.join(here, "containerd-cri.sh"), "start", f"{work}/containerd", registry)
        image = f"{registry}/busybox:1"
        # Present before the first pod, as the engine's is.
        sh("ctr", "--address", f"{work}/containerd/containerd.sock", "--namespace", "k8s.io", "images", "pull",
           "--plain-http", image)
        containerd_started.update(image=image, pid=int(open(f"{work}/containerd/containerd.pid").read().split()[0]),
                                  endpoint=f"unix://{work}/containerd/containerd.sock")
    return containerd_started["image"], containerd_started["pid"], containerd_started["endpoint"]


def run(runtime, env):
    extra, image, containerd_pid = [], "bench/busybox:1", None
    if runtime == "containerd":
        if not os.path.exists("/usr/bin/containerd"):
            print("| containerd | | not installed (apt-get install containerd) | | | | | | |")
            return
        image, containerd_pid, endpoint = containerd_runtime()
        extra = ["--container-runtime-endpoint", endpoint]
    port, kubelet = free_port(), free_port()
    out = open(f"{work}/server-{runtime}.log", "w")
    server = subprocess.Popen(
        [berth, "server", "--data-dir", f"{work}/server-{runtime}", "--listen", f"127.0.0.1:{port}", "--root",
         f"{work}/engine", "--agent-root", f"{work}/agent", "--pod-log-dir", f"{work}/logs", "--node-name",
         "bench-node", "--cgroup-root", "/berth-bench-pods/kubepods", "--kubelet-port", str(kubelet),
         "--log-level", "error", "--max-pods", str(N + 10)] + extra,
        stdout=subprocess.PIPE, stderr=out, env=env, text=True)
    procs.append(server)
    line = server.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"berth server did not start: {line}")
    api = API(port, f"{work}/server-{runtime}/pki")
    for _ in range(600):
        node = api.call("GET", "/api/v1/nodes")["items"]
        if node and any(c["type"] == "Ready" and c["status"] == "True" for c in node[0]["status"]["conditions"]):
            break
        time.sleep(0.1)
    for round_index, rate in enumerate(RATES):
        created, running = {}, {}
        lock = threading.Lock()
        done = threading.Event()
        rv = api.call("GET", "/api/v1/namespaces/default/pods")["metadata"]["resourceVersion"]

        def watch():
            c = api.connection()
            c.request("GET", f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}")
            r = c.getresponse()
            buffer = b""
            while not done.is_set():
                chunk = r.read1(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = json.loads(line)
                    pod = event["object"]
                    if pod.get("status", {}).get("phase") == "Running":
                        name = pod["metadata"]["name"]
                        with lock:
                            running.setdefault(name, time.monotonic())
                            if len(running) >= N:
                                done.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        busy_before = busy_seconds()
        start = time.monotonic()
        for i in range(N):
            name = f"r{round_index}-p{i}"
            target = start + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            api.call("POST", "/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                    {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                     "command": ["sleep", "100000"]}]}})
            with lock:
                created[name] = time.monotonic()
        done.wait(timeout=300)
        cpu_per_pod = (busy_seconds() - busy_before) / N * 1000
        latencies = sorted(running[n] - created[n] for n in created if n in running)
        rss = rss_kb(server.pid) // 1024
        runtime_rss = runtime_rss_kb(runtime, containerd_pid) // 1024
        if len(latencies) < N:
            print(f"| {runtime} | {rate} | {len(latencies)}/{N} Running in 300 s | | | | | | |")
        else:
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            print(f"| {runtime} | {rate} | {N} | {p(0.5) * 1000:.0f} ms | {p(0.99) * 1000:.0f} ms "
                  f"| {latencies[-1] * 1000:.0f} ms | {cpu_per_pod:.0f} ms | {rss} MB | {runtime_rss} MB |")
        sys.stdout.flush()
        # Gone before the next round (deleted at once; the agent stops and removes them).
        delete_pods(api, created, seconds=120)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_separate_agent(runtime, env):
    """AGENT_PODS pods on a node whose agent is `berth agent`, a process of its own, beside `berth server
    --disable-agent` and the runtime; the memory of each with every pod Running."""
    image, runtime_pid, endpoint, engine = "bench/busybox:1", None, None, None
    if runtime == "containerd":
        if not os.path.exists("/usr/bin/containerd"):
            print("| containerd | not installed (apt-get install containerd) | | | | | | | |")
            return
        image, runtime_pid, endpoint = containerd_runtime()
    else:
        # The engine alone, serving the CRI on a socket of its own (the image is in its store already).
        socket_path = f"{work}/run/agent-cri.sock"
        os.makedirs(f"{work}/run", exist_ok=True)
        engine = subprocess.Popen(
            [berth, "engine", "--root", f"{work}/engine", "-H", f"unix://{work}/run/agent-docker.sock", "--cri-socket",
             socket_path], stdout=subprocess.PIPE, stderr=open(f"{work}/agent-engine.log", "w"), env=env, text=True)
        procs.append(engine)
        while "ready cri" not in (line := engine.stdout.readline()):
            if not line:
                raise SystemExit(f"berth engine did not start: {open(f'{work}/agent-engine.log').read()[-2000:]}")
        runtime_pid, endpoint = engine.pid, f"unix://{socket_path}"
    port, kubelet = free_port(), free_port()
    data = f"{work}/server-agent-{runtime}"
    server = subprocess.Popen(
        [berth, "server", "--disable-agent", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--log-level",
         "error"], stdout=subprocess.PIPE, stderr=open(f"{work}/server-agent-{runtime}.log", "w"), env=env, text=True)
    procs.append(server)
    line = server.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"berth server did not start: {line}")
    # Calls unanswered in 10 s are sent again (and counted on stderr): with a remote agent connected, the
    # API server has left some new connections' first request unanswered.
    api = API(port, f"{data}/pki", timeout=10, retries=5)
    # The agent's serving certificate from the cluster CA, as a join would give it.
    node = "bench-agent-node"
    sh("sh", "-c", f"""set -e
        openssl ecparam -name prime256v1 -genkey -noout -out {work}/agent.key
        openssl req -new -key {work}/agent.key -subj "/CN=system:node:{node}/O=system:nodes" -out {work}/agent.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:{node}\\nextendedKeyUsage=serverAuth\\n' > {work}/agent.ext
        openssl x509 -req -in {work}/agent.csr -CA {data}/pki/ca.crt -CAkey {data}/pki/ca.key -CAcreateserial \\
          -days 1 -extfile {work}/agent.ext -out {work}/agent.crt 2>/dev/null""")
    command = [
        berth, "agent", "--kubeconfig", f"{data}/admin.kubeconfig", "--node-name", node, "--node-ip", "127.0.0.1",
        "--container-runtime-endpoint", endpoint, "--agent-root", f"{work}/agent-separate", "--pod-log-dir",
        f"{work}/logs-separate", "--cgroup-root", "/berth-bench-pods/kubepods-separate", "--kubelet-port",
        str(kubelet), "--kubelet-address", "127.0.0.1", "--tls-cert-file", f"{work}/agent.crt",
        "--tls-private-key-file", f"{work}/agent.key", "--log-level", "error", "--max-pods", str(max(110, AGENT_PODS))]
    agent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(f"{work}/agent-{runtime}.log", "w"),
                             env=env)
    procs.append(agent)
    for _ in range(600):
        nodes = api.call("GET", "/api/v1/nodes")["items"]
        if nodes and any(c["type"] == "Ready" and c["status"] == "True" for c in nodes[0]["status"]["conditions"]):
            break
        if agent.poll() is not None:
            raise SystemExit(f"berth agent exited: {open(f'{work}/agent-{runtime}.log').read()[-2000:]}")
        time.sleep(0.1)
    time.sleep(2)
    idle = rss_kb(agent.pid)
    runtime_idle = rss_kb(runtime_pid)
    start = time.monotonic()
    names = [f"agent-p{i}" for i in range(AGENT_PODS)]
    for i, name in enumerate(names):
        delay = start + i / 20 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        api.call("POST", "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "100000"]}]}})
    created = time.monotonic()
    running, elapsed = 0, None
    while time.monotonic() - start < 600:
        pods = api.call("GET", "/api/v1/namespaces/default/pods")["items"]
        running = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")
        if running >= AGENT_PODS:
            elapsed = time.monotonic() - start
            break
        time.sleep(0.5)
    mb = lambda kb: f"{kb / 1024:.1f}"
    # RSS, then its anonymous part (heap and stacks: the rest is the binary's pages) and PSS (the binary's
    # pages split with the engine and server running the same file).
    agent_memory = lambda: (f"{mb(rss_kb(agent.pid))} (anon {mb(rss_kb(agent.pid, 'RssAnon'))}, "
                            f"PSS {mb(pss_kb(agent.pid))})")
    at_running = agent_memory()
    runtime_rss, monitors, server_rss = rss_kb(runtime_pid), runtime_rss_kb(runtime, None), rss_kb(server.pid)
    time.sleep(SETTLE)
    later = agent_memory()
    print(f"| {runtime} | {running}/{AGENT_PODS} | " + (f"{elapsed:.1f} s ({created - start:.1f} s creating)" if elapsed else "not all in 600 s")
          + f" | {mb(idle)} | {at_running} | {later} | {mb(runtime_rss)} (idle {mb(runtime_idle)}) | {mb(monitors)} | {mb(server_rss)} |")
    sys.stdout.flush()
    delete_pods(api, names, seconds=180)
    # The API forgets a pod deleted at once before the agent has stopped it: the agent is given the time
    # to stop every pod (its sandbox's network torn down) before it is stopped.
    for _ in range(600):
        if not runtime_processes(runtime):
            break
        time.sleep(0.2)
    if api.retried:
        print(f"{runtime}: {api.retried} API calls got no answer in 10 s and were sent again", file=sys.stderr)
    stop(agent)
    if engine:
        stop(engine)
    stop(server)


def remove_node_network_state():
    """What the agents' service proxy, policy enforcer and cluster DNS leave on the host by design (their
    rules outlive them, as kube-proxy's do): removed, since the bench made them."""
    for table in ("berth-proxy", "berth-policy"):
        subprocess.run(["nft", "delete", "table", "ip", table], stderr=subprocess.DEVNULL)
    if os.path.exists("/sys/class/net/berth-dns"):
        subprocess.run(["ip", "link", "delete", "berth-dns"], stderr=subprocess.DEVNULL)
    else:
        subprocess.run(["ip", "addr", "del", "10.96.0.10/32", "dev", "lo"], stderr=subprocess.DEVNULL)


def cleanup():
    terminate(procs)
    remove_leftovers(berth, work, f"{work}/engine", f"{work}/run", "/berth-bench-pods")
    remove_node_network_state()
    store.remove()


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
