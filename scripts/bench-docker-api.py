#!/usr/bin/env python3
"""Docker Engine API benchmark: the docker CLI (the same binary, 28.x) against `berth engine`, a private
dockerd and podman's API service, side by side in one run:

  - `docker run --rm --network none IMG true`, interleaved (one run per engine per round), median, p90;
  - `docker ps` with 100 running containers (and the time to start those 100 with `docker run -d`);
  - `docker logs` of a container that wrote 100 MB;
  - `docker pull` of a three-layer image (~100 MB) from a local docker-registry, through the API;
  - each daemon's RSS, idle (dockerd with the containerd it started; podman's service alone — its
    conmon processes are per container).

Every engine keeps its store on one tmpfs (this host's root ext4 has no journal; see bench-engine.py).
dockerd runs with docker's stock networking in a network namespace of its own (as
../shared/peers/docker-netns.sh runs it; the registry's loopback port is relayed into it), so the host's
network is untouched; the runs use `--network none` everywhere. Peers are measured when installed (Debian's docker.io and podman).
Needs root. BERTH (default .build/release/berth), N (rounds, default 20).
"""
import os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchpeers import podman_command, sh, start_dockerd, stats, timed

N = int(os.environ.get("N", "20"))
here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
docker_cli = shutil.which("docker", path="/usr/local/bin:/usr/bin")
work = tempfile.mkdtemp(prefix="berth-bench-dapi-", dir="/var/tmp")
started = []          # daemons to stop, as (name, Popen)
registry_dir = None


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def wait_for_socket(cli, proc, name):
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}")
        if subprocess.run(cli + ["version"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer within 60 s")


class Engine:
    def __init__(self, name, sock, proc, image, pid_of_daemon, env=None):
        self.name, self.sock, self.proc, self.image = name, sock, proc, image
        self.pids = pid_of_daemon   # callable: the daemon processes whose RSS counts
        self.cli = [docker_cli, "-H", f"unix://{sock}"]
        self.env = dict(os.environ, DOCKER_CONFIG=f"{work}/docker-config-{name}", **(env or {}))

    def docker(self, *args, **kw):
        return timed(self.cli + list(args), self.env, **kw)

    def out(self, *args):
        return subprocess.run(self.cli + list(args), capture_output=True, text=True, env=self.env)


def setup():
    sh("mount", "-t", "tmpfs", "-o", "size=6g", "berth-bench-dapi", work)
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    env = dict(os.environ, BERTH_ROOT=f"{work}/berth", BERTH_RUN=f"{work}/berth-run")
    sh(berth, "image", "import", f"{images}/busybox/layer1.tar.gz", "-t", "bench/busybox:1", env=env)
    sh(berth, "save", "-o", f"{work}/busybox.tar", "bench/busybox:1", env=env)
    return images, env


def berth_engine(env):
    sock = f"{work}/berth.sock"
    log = open(f"{work}/berth-engine.log", "w")
    proc = subprocess.Popen([berth, "engine", "-H", f"unix://{sock}"], stdout=log, stderr=log, env=env)
    started.append(("berth", proc))
    e = Engine("berth", sock, proc, "bench/busybox:1", lambda: [proc.pid])
    wait_for_socket(e.cli, proc, "berth engine")
    return e


def docker_engine(registry):
    if not shutil.which("dockerd"):
        return None
    proc, sock = start_dockerd(work, netns=True, forward=[int(registry.rsplit(":", 1)[1])])
    started.append(("dockerd", proc))
    # dockerd's own containerd is its child: both are the daemon a docker user runs.
    e = Engine("dockerd", sock, proc, "bench/busybox:1", lambda: [proc.pid] + children(proc.pid))
    try:
        wait_for_socket(e.cli, proc, "dockerd")
        sh(*e.cli, "load", "-i", f"{work}/busybox.tar")
        e.docker("run", "--rm", "--network", "none", e.image, "true")
    except Exception as err:
        print(f"dockerd not measured: {err}", file=sys.stderr)
        return None
    return e


def podman_engine(registry):
    if not shutil.which("podman"):
        return None
    base, env = podman_command(work, insecure_registry=registry)
    sock = f"{work}/podman.sock"
    try:
        sh(*base, "load", "-i", f"{work}/busybox.tar", env=env)
        ref = "localhost/bench/busybox:1"
        sh(*base, "tag", sh(*base, "images", "-q", env=env).stdout.split()[0], ref, env=env)
        log = open(f"{work}/podman-service.log", "w")
        proc = subprocess.Popen(base + ["system", "service", "--time", "0", f"unix://{sock}"], stdout=log, stderr=log, env=env)
        started.append(("podman", proc))
        e = Engine("podman", sock, proc, ref, lambda: [proc.pid])
        wait_for_socket(e.cli, proc, "podman system service")
        e.docker("run", "--rm", "--network", "none", e.image, "true")
    except Exception as err:
        print(f"podman not measured: {err}", file=sys.stderr)
        return None
    return e


def start_registry(images, env):
    global registry_dir
    registry_dir = os.path.join(work, "registry")
    port = sh(os.path.join(here, "image-registry.sh"), "start", registry_dir).stdout.strip()
    ref = f"127.0.0.1:{port}/bench/three:1"
    stage = dict(env, BERTH_ROOT=f"{work}/stage")
    sh(berth, "image", "import", *(f"{images}/big/layer{i}.tar.gz" for i in (1, 2, 3)), "-t", ref, env=stage)
    sh(berth, "push", ref, env=stage)
    return f"127.0.0.1:{port}", ref


def ratio(value, base):
    return f"{value / base:.2f}x" if base else "n/a"


def main():
    if not docker_cli:
        sys.exit("no docker CLI")
    images, env = setup()
    registry, three = start_registry(images, env)
    engines = [berth_engine(env)]
    for make in (lambda: docker_engine(registry), lambda: podman_engine(registry)):
        e = make()
        if e:
            engines.append(e)
    by = {e.name: e for e in engines}
    idle = {e.name: sum(rss_kb(p) for p in e.pids()) for e in engines}

    # 1. run --rm, interleaved.
    samples = {e.name: [] for e in engines}
    for e in engines:
        e.docker("run", "--rm", "--network", "none", e.image, "true")
    for _ in range(N):
        for e in engines:
            samples[e.name].append(e.docker("run", "--rm", "--network", "none", e.image, "true"))
    print(f"\n### docker CLI → each daemon: `docker run --rm --network none IMG true` (N={N}, interleaved; ms)\n")
    print("| daemon | median | p90 | berth vs it |")
    print("|---|---|---|---|")
    berth_median = stats(samples["berth"])[0]
    for e in engines:
        med, p90 = stats(samples[e.name])
        print(f"| {e.name} | {med:.1f} | {p90:.1f} | {ratio(berth_median, med) if e.name != 'berth' else ''} |")

    # 2. 100 detached containers, then `docker ps`.
    print("\n### 100 running containers: start them one by one, then `docker ps` (median of 10)\n")
    print("| daemon | 100 × `run -d` (s) | `docker ps` (ms) | lines listed |")
    print("|---|---|---|---|")
    ps_times = {}
    for e in engines:
        t = time.perf_counter()
        for _ in range(100):
            e.docker("run", "-d", "--network", "none", e.image, "sleep", "1000")
        start_all = time.perf_counter() - t
        runs = [e.docker("ps") for _ in range(10)]
        listed = len(e.out("ps", "-q").stdout.split())
        ps_times[e.name] = statistics.median(runs) * 1000
        print(f"| {e.name} | {start_all:.1f} | {ps_times[e.name]:.1f} | {listed} |")
        ids = e.out("ps", "-aq").stdout.split()
        if ids:
            subprocess.run(e.cli + ["rm", "-f"] + ids, capture_output=True, env=e.env)

    # 3. docker logs of 100 MB (lines of 100 bytes).
    print("\n### `docker logs` of a container that wrote 100 MB (median of 3)\n")
    print("| daemon | seconds | MB returned |")
    print("|---|---|---|")
    writer = "busybox yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | busybox head -c 104857600"
    for e in engines:
        try:
            name = f"logs-{e.name}"
            e.docker("run", "--name", name, "--network", "none", e.image, "sh", "-c", writer)
            out_path = f"{work}/logs-{e.name}.out"
            runs = []
            for _ in range(3):
                with open(out_path, "w") as out:
                    runs.append(e.docker("logs", name, stdout=out))
            size = os.path.getsize(out_path) / 1e6
            os.unlink(out_path)
            print(f"| {e.name} | {statistics.median(runs):.2f} | {size:.1f} |")
            e.out("rm", "-f", name)
        except Exception as err:
            print(f"| {e.name} | failed: {err} | |")

    # 4. pull of a three-layer image through the API (removed between pulls).
    print(f"\n### `docker pull` of a three-layer image (~100 MB) from a local registry (median of 3)\n")
    print("| daemon | seconds |")
    print("|---|---|")
    for e in engines:
        try:
            runs = []
            for _ in range(3):
                runs.append(e.docker("pull", "-q", three))
                e.out("rmi", three)
            print(f"| {e.name} | {statistics.median(runs):.2f} |")
        except Exception as err:
            print(f"| {e.name} | failed: {err} |")

    print("\n### Daemon memory, idle after start (RSS, MB)\n")
    print("| daemon | RSS at start | RSS after the runs above |")
    print("|---|---|---|")
    for e in engines:
        print(f"| {e.name} | {idle[e.name] / 1024:.1f} | {sum(rss_kb(p) for p in e.pids()) / 1024:.1f} |")

    if "dockerd" in by or "podman" in by:
        parts = [f"{peer} {ratio(berth_median, stats(samples[peer])[0])}" for peer in ("dockerd", "podman") if peer in by]
        print(f"\nrun --rm through the docker CLI: berth at {', '.join(parts)}.")


try:
    main()
finally:
    for name, p in started:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    if registry_dir:
        subprocess.run([os.path.join(here, "image-registry.sh"), "stop", registry_dir], capture_output=True)
    env = dict(os.environ, BERTH_ROOT=f"{work}/berth", BERTH_RUN=f"{work}/berth-run")
    ids = subprocess.run([berth, "ps", "-aq", "--no-trunc"], capture_output=True, text=True, env=env).stdout.split()
    if ids:
        subprocess.run([berth, "rm", "-f"] + ids, capture_output=True, env=env)
    subprocess.run(["umount", "-l", work], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
