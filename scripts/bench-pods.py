#!/usr/bin/env python3
"""Pod startup benchmark (issue 12): a one-node `berth server` (API server, agent and engine in one
process, the image already in the engine's store) gets 100 pods created through the API at 10 per second
and then at 50 per second; each pod's latency is from its create call returning to the watch seeing it
Running (the Kubernetes pod-startup SLI without image pulls). Prints p50/p99 per rate and the server's
RSS with the pods of the last round running.

Not measured here yet: the same agent over containerd 1.6's CRI (the issue's peer).
Usage: BERTH=.build/release/berth python3 scripts/bench-pods.py   (root; N=100, RATES="10 50")
"""
import http.client, json, os, signal, socket, ssl, statistics, subprocess, sys, tempfile, threading, time

here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
N = int(os.environ.get("N", "100"))
RATES = [int(r) for r in os.environ.get("RATES", "10 50").split()]
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
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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


def main():
    env = dict(os.environ, BERTH_RUN=f"{work}/run")
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    sh(berth, "image", "import", "--root", f"{work}/engine", f"{images}/busybox/layer1.tar.gz", "-t",
       "bench/busybox:1", env=env)
    port, kubelet = free_port(), free_port()
    out = open(f"{work}/server.log", "w")
    server = subprocess.Popen(
        [berth, "server", "--data-dir", f"{work}/server", "--listen", f"127.0.0.1:{port}", "--root",
         f"{work}/engine", "--agent-root", f"{work}/agent", "--pod-log-dir", f"{work}/logs", "--node-name",
         "bench-node", "--cgroup-root", "/berth-bench-pods/kubepods", "--kubelet-port", str(kubelet),
         "--log-level", "error", "--max-pods", str(N + 10)],
        stdout=subprocess.PIPE, stderr=out, env=env, text=True)
    procs.append(server)
    line = server.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"berth server did not start: {line}")
    api = API(port, f"{work}/server/pki")
    for _ in range(600):
        node = api.call("GET", "/api/v1/nodes")["items"]
        if node and any(c["type"] == "Ready" and c["status"] == "True" for c in node[0]["status"]["conditions"]):
            break
        time.sleep(0.1)
    print("| rate (pods/s) | pods | p50 create→Running | p99 | max | server RSS with the pods |")
    print("|---|---|---|---|---|---|")
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
                    {"name": "c", "image": "bench/busybox:1", "imagePullPolicy": "Never",
                     "command": ["sleep", "100000"]}]}})
            with lock:
                created[name] = time.monotonic()
        done.wait(timeout=300)
        latencies = sorted(running[n] - created[n] for n in created if n in running)
        rss = rss_kb(server.pid) // 1024
        if len(latencies) < N:
            print(f"| {rate} | {len(latencies)}/{N} Running in 300 s | | | | |")
        else:
            p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            print(f"| {rate} | {N} | {p(0.5) * 1000:.0f} ms | {p(0.99) * 1000:.0f} ms | {latencies[-1] * 1000:.0f} ms "
                  f"| {rss} MB |")
        # Gone before the next round (deleted at once; the agent stops and removes them).
        for name in created:
            api.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
        for _ in range(600):
            if not api.call("GET", "/api/v1/namespaces/default/pods")["items"]:
                break
            time.sleep(0.2)
    sys.stdout.flush()


def cleanup():
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
