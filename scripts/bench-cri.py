#!/usr/bin/env python3
"""CRI microbenchmark (issue 12): the kubelet's three calls to start a pod — RunPodSandbox,
CreateContainer, StartContainer — on Berth's engine (`berth engine --cri-socket`) and on Debian's
containerd 1.6 (its CRI plugin, scripts/containerd-cri.sh), timed by `berth bench cri` from the client
side over the same gRPC client. Target: Berth's total at most 0.3 of containerd's.

Both runtimes run at once on the same filesystem (see benchcri.Store: a fresh ext4 by default),
each pulls the same image (a static busybox, pushed to a docker-registry on 127.0.0.1) through its
ImageService before timing, and the runs alternate between them, so that background load falls on both.
Each pod gets a cgroup parent under /berth-bench-cri, as the kubelet gives one; containerd's sandbox
is its pause container (busybox `sleep infinity`), Berth's is pinned namespaces; both join the pod to a
bridge network (Berth's engine network, containerd's CNI bridge). Every pod is stopped and removed
after its run, and everything made here is removed at the end.

Usage: BERTH=.build/release/berth python3 scripts/bench-cri.py
       (root; N=50 pods per run, PARALLEL="1 4" pods at a time, ROUNDS=2 runs of each, WARMUP=2,
       RUNTIMES="berth containerd", STORE=ext4|host|tmpfs, HOST_NETWORK=0 (1: pods on the host's network, to see what
       the pod network costs); containerd needs the Debian package)
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

from benchcri import Store, remove_leftovers, sh, start_registry, terminate

here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
N = int(os.environ.get("N", "50"))
PARALLEL = [int(p) for p in os.environ.get("PARALLEL", "1 4").split()]
ROUNDS = int(os.environ.get("ROUNDS", "2"))
WARMUP = int(os.environ.get("WARMUP", "2"))
RUNTIMES = os.environ.get("RUNTIMES", "berth containerd").split()
HOST_NETWORK = os.environ.get("HOST_NETWORK", "0") == "1"
CGROUP = "/berth-bench-cri"
store = Store("berth-bench-cri-")
work = store.path
procs = []


def start_berth(env):
    """`berth engine` serving the CRI on a socket of its own, over its own data root; its socket."""
    sock = f"{work}/berth/run/cri.sock"
    os.makedirs(f"{work}/berth/run", exist_ok=True)
    log = open(f"{work}/berth/engine.log", "w")
    engine = subprocess.Popen([berth, "engine", "--root", f"{work}/berth/root", "-H",
                               f"unix://{work}/berth/run/docker.sock", "--cri-socket", sock],
                              stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    procs.append(engine)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = engine.stdout.readline()
        if not line:
            raise SystemExit(f"berth engine exited: {open(f'{work}/berth/engine.log').read()[-2000:]}")
        if "ready cri" in line:
            return f"unix://{sock}"
    raise SystemExit("berth engine did not say `ready cri` in 60 s")


def start_containerd(registry):
    if not os.path.exists("/usr/bin/containerd"):
        return None
    sh(os.path.join(here, "containerd-cri.sh"), "start", f"{work}/containerd", registry)
    return f"unix://{work}/containerd/containerd.sock"


def bench(endpoint, image, parallel, runtime, env):
    """One `berth bench cri` run: its JSON report."""
    r = subprocess.run([berth, "bench", "cri", "--endpoint", endpoint, "--image", image, "--count", str(N),
                        "--parallel", str(parallel), "--warmup", str(WARMUP), "--cgroup-parent",
                        f"{CGROUP}/{runtime}", "--log-root", f"{work}/logs-{runtime}", "--json"]
                       + (["--host-network"] if HOST_NETWORK else []),
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        log = f"{work}/berth/engine.log" if runtime == "berth" else f"{work}/containerd/containerd.log"
        tail = "".join(open(log).readlines()[-15:]) if os.path.exists(log) else ""
        raise RuntimeError(f"berth bench cri on {runtime}: {r.stderr.strip()[-1500:]}\n{log}:\n{tail}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    env = dict(os.environ, BERTH_RUN=f"{work}/berth/run")
    registry = start_registry(work, procs)
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    image = f"{registry}/bench/busybox:1"
    stage = dict(os.environ, BERTH_ROOT=f"{work}/stage", BERTH_RUN=f"{work}/stage-run")
    sh(berth, "image", "import", f"{images}/busybox/layer1.tar.gz", "-t", image, env=stage)
    sh(berth, "push", image, env=stage)
    endpoints = {}
    for runtime in RUNTIMES:
        if runtime == "berth":
            endpoints["berth"] = start_berth(env)
        elif runtime == "containerd":
            endpoints["containerd"] = start_containerd(registry)
    print(f"CRI: {N} pods per run (after {WARMUP} untimed), {ROUNDS} runs each alternating, "
          f"{'host network' if HOST_NETWORK else 'pod network'}, store on {store.describe()} "
          f"({work}), load {open('/proc/loadavg').read().split()[0]}, {os.cpu_count()} CPUs")
    print("| runtime | pods at a time | RunPodSandbox p50 / p99 | CreateContainer p50 / p99 "
          "| StartContainer p50 / p99 | total p50 / p99 | total mean | pods/s |")
    print("|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    results = {}
    for parallel in PARALLEL:
        for _ in range(ROUNDS):
            for runtime in RUNTIMES:
                if not endpoints.get(runtime):
                    continue
                report = bench(endpoints[runtime], image, parallel, runtime, env)
                results.setdefault((runtime, parallel), []).append(report)
                cell = lambda call: f"{report[call]['p50_ms']:.1f} / {report[call]['p99_ms']:.1f} ms"
                print(f"| {runtime} ({report['runtime']}) | {parallel} | {cell('RunPodSandbox')} "
                      f"| {cell('CreateContainer')} | {cell('StartContainer')} | {cell('total')} "
                      f"| {report['total']['mean_ms']:.1f} ms | {report['pods'] / report['wall_s']:.1f} |")
                sys.stdout.flush()
    if "containerd" in RUNTIMES and not endpoints.get("containerd"):
        print("| containerd | | not installed (apt-get install containerd) | | | | | |")
    # The ratio from the medians over the rounds (target: Berth ≤ 0.3 × containerd).
    for parallel in PARALLEL:
        b, c = results.get(("berth", parallel)), results.get(("containerd", parallel))
        if not b or not c:
            continue
        figures = []
        for key in ("p50_ms", "p99_ms", "mean_ms"):
            ratio = statistics.median(r["total"][key] for r in b) / statistics.median(r["total"][key] for r in c)
            figures.append(f"{key[:-3]} {ratio:.2f}")
        per_call = ", ".join(
            f"{call} {statistics.median(r[call]['p50_ms'] for r in b) / statistics.median(r[call]['p50_ms'] for r in c):.2f}"
            for call in ("RunPodSandbox", "CreateContainer", "StartContainer"))
        print(f"Berth/containerd, {parallel} at a time: total {', '.join(figures)} (target ≤ 0.30); "
              f"p50 per call: {per_call}")
    sys.stdout.flush()


def cleanup():
    # The engine first, while containerd (which its stop script ends) is still there for nothing of it.
    terminate([p for p in procs if p.args[:2] == [berth, "engine"]])
    terminate(procs)
    remove_leftovers(berth, work, f"{work}/berth/root", f"{work}/berth/run", CGROUP)
    store.remove()


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
