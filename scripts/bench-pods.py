#!/usr/bin/env python3
"""Pod startup benchmark (issue 12): a one-node `berth server` (API server and agent in one process, the
image already in the runtime's store) gets 100 pods created through the API at 10 per second and then at
50 per second; each pod's latency is from its create call returning to the watch seeing it Running (the
Kubernetes pod-startup SLI without image pulls). The same agent runs them on Berth's engine (in the
server's process) and on Debian's containerd 1.6 through its CRI (scripts/containerd-cri.sh), side by
side. Prints p50/p99 per runtime and rate, the server's RSS (API server and agent) and the runtime's
(containerd and its shims, or the engine's container monitors; PSS, shared pages split) with the last round's pods running.

Usage: BERTH=.build/release/berth python3 scripts/bench-pods.py
       (root; N=100, RATES="10 50", RUNTIMES="berth containerd"; containerd needs the Debian package)
"""
import http.client, json, os, signal, socket, ssl, statistics, subprocess, sys, tempfile, threading, time

here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
N = int(os.environ.get("N", "100"))
RATES = [int(r) for r in os.environ.get("RATES", "10 50").split()]
RUNTIMES = os.environ.get("RUNTIMES", "berth containerd").split()
work = tempfile.mkdtemp(prefix="berth-bench-pods-", dir="/var/tmp")
procs = []


def sh(*args, env=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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


def runtime_rss_kb(runtime, containerd_pid):
    """The runtime's own processes (PSS): containerd and its shims, or the engine's container monitors."""
    total = pss_kb(containerd_pid) if containerd_pid else 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = open(f"/proc/{entry}/comm").read().strip()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if runtime == "containerd" and comm.startswith("containerd-shim") and work.encode() in cmdline:
            total += pss_kb(int(entry))
        if runtime == "berth" and comm == "berth-monitor" and work.encode() in cmdline:
            total += pss_kb(int(entry))
    return total


class API:
    def __init__(self, port, pki):
        self.context = ssl.create_default_context(cafile=f"{pki}/ca.crt")
        self.context.load_cert_chain(f"{pki}/admin.crt", f"{pki}/admin.key")
        self.port = port

    def connection(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=120)

    def call(self, method, path, body=None):
        c = self.connection()
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
        return json.loads(data) if data else None


def start_registry():
    port = free_port()
    os.makedirs(f"{work}/registry", exist_ok=True)
    with open(f"{work}/registry.yml", "w") as f:
        f.write(f"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\n"
                f"storage: {{filesystem: {{rootdirectory: {work}/registry}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n")
    registry = subprocess.Popen(["docker-registry", "serve", f"{work}/registry.yml"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    procs.append(registry)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return f"127.0.0.1:{port}"


def main():
    env = dict(os.environ, BERTH_RUN=f"{work}/run")
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    sh(berth, "image", "import", "--root", f"{work}/engine", f"{images}/busybox/layer1.tar.gz", "-t",
       "bench/busybox:1", env=env)
    print("| runtime | rate (pods/s) | pods | p50 create→Running | p99 | max | server RSS | runtime PSS |")
    print("|---|---|---|---|---|---|---|---|")
    for runtime in RUNTIMES:
        run(runtime, env)
    sys.stdout.flush()


def run(runtime, env):
    extra, image, containerd_pid = [], "bench/busybox:1", None
    if runtime == "containerd":
        if not os.path.exists("/usr/bin/containerd"):
            print("| containerd | | not installed (apt-get install containerd) | | | | | |")
            return
        registry = start_registry()
        sh(os.path.join(here, "containerd-cri.sh"), "start", f"{work}/containerd", registry)
        containerd_pid = int(open(f"{work}/containerd/containerd.pid").read().split()[0])
        image = f"{registry}/busybox:1"
        # Present before the first pod, as the engine's is.
        sh("ctr", "--address", f"{work}/containerd/containerd.sock", "--namespace", "k8s.io", "images", "pull",
           "--plain-http", image)
        extra = ["--container-runtime-endpoint", f"unix://{work}/containerd/containerd.sock"]
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
        latencies = sorted(running[n] - created[n] for n in created if n in running)
        rss = rss_kb(server.pid) // 1024
        runtime_rss = runtime_rss_kb(runtime, containerd_pid) // 1024
        if len(latencies) < N:
            print(f"| {runtime} | {rate} | {len(latencies)}/{N} Running in 300 s | | | | | |")
        else:
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            print(f"| {runtime} | {rate} | {N} | {p(0.5) * 1000:.0f} ms | {p(0.99) * 1000:.0f} ms "
                  f"| {latencies[-1] * 1000:.0f} ms | {rss} MB | {runtime_rss} MB |")
        sys.stdout.flush()
        # Gone before the next round (deleted at once; the agent stops and removes them).
        for name in created:
            api.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
        for _ in range(600):
            if not api.call("GET", "/api/v1/namespaces/default/pods")["items"]:
                break
            time.sleep(0.2)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def cleanup():
    if os.path.exists(f"{work}/containerd"):
        subprocess.run([os.path.join(here, "containerd-cri.sh"), "stop", f"{work}/containerd"], capture_output=True)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    # The containers the agent left (none when the deletes finished), then the store.
    env = dict(os.environ, BERTH_RUN=f"{work}/run")
    ids = subprocess.run([berth, "ps", "-aq", "--root", f"{work}/engine"], capture_output=True, text=True,
                         env=env).stdout.split()
    if ids:
        subprocess.run([berth, "rm", "-f", "--root", f"{work}/engine"] + ids, capture_output=True, env=env)
    subprocess.run(["sh", "-c", f"grep ' {work}' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | "
                    "xargs -r -n1 umount -l"], capture_output=True)
    subprocess.run(["find", "/sys/fs/cgroup", "-depth", "-type", "d", "-path", "*/berth-bench-pods*", "-exec",
                    "rmdir", "{}", ";"], capture_output=True)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
