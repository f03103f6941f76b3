#!/usr/bin/env python3
"""Engine benchmark: `berth run --rm IMG true` beside `podman run --rm` and `docker run --rm`, the image
already present, interleaved (one run of each engine per round), medians and p90; 50 `run -d` at once;
monitor RSS with 100 running containers.

Every engine keeps its store on the same filesystem (a tmpfs here: this host's root ext4 has no journal,
which slows re-creating files just deleted, and would penalise whoever runs second). podman and docker
are measured when installed (Debian's podman and docker.io; `apt-get install podman docker.io`); docker
runs a private dockerd (own data root and socket, no iptables, no bridge) started and stopped here.
Networking: `--network none` for all; then Berth's default bridge beside podman's (CNI, cni-podman0,
removed afterwards). docker's bridge is not measured: it would rewrite the host's iptables.
"""
import os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchpeers import podman_command, sh, start_dockerd, stats, timed

N = int(os.environ.get("N", "20"))
here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH") or os.path.join(here, "..", ".build", "release", "berth")
work = tempfile.mkdtemp(prefix="berth-bench-engine-", dir="/var/tmp")
started = []
podman_bridge = []

def setup():
    sh("mount", "-t", "tmpfs", "-o", "size=4g", "berth-bench-engine", work)
    images = os.path.join(work, "images")
    sh(os.path.join(here, "image-build-test-images.sh"), images)
    env = dict(os.environ, BERTH_ROOT=f"{work}/berth", BERTH_RUN=f"{work}/berth-run")
    sh(berth, "image", "import", f"{images}/busybox/layer1.tar.gz", "-t", "bench/busybox:1", env=env)
    sh(berth, "save", "-o", f"{work}/busybox.tar", "bench/busybox:1", env=env)
    return env

def podman_engine():
    if not shutil.which("podman"):
        return None
    # Its CNI configs (the `podman` bridge network, cni-podman0 on 10.88.0.0/16) in a directory of ours.
    base, env = podman_command(work)
    try:
        sh(*base, "load", "-i", f"{work}/busybox.tar", env=env)
        ref = "localhost/bench/busybox:1"
        sh(*base, "tag", sh(*base, "images", "-q", env=env).stdout.split()[0], ref, env=env)
        timed(base + ["run", "--rm", "--network", "none", ref, "true"], env)
    except Exception as e:
        print(f"podman not measured: {e}", file=sys.stderr)
        return None
    runs = {"podman": lambda: timed(base + ["run", "--rm", "--network", "none", ref, "true"], env)}
    try:
        timed(base + ["run", "--rm", "--network", "bridge", ref, "true"], env)
        podman_bridge.append(True)
        runs["podman (bridge)"] = lambda: timed(base + ["run", "--rm", "--network", "bridge", ref, "true"], env)
    except Exception as e:
        print(f"podman bridge not measured: {e}", file=sys.stderr)
    return runs

def docker_engine():
    if not shutil.which("dockerd"):
        return None
    proc, sock = start_dockerd(work)
    started.append(proc)
    cli = ["/usr/bin/docker", "-H", f"unix://{sock}"]
    try:
        sh(*cli, "load", "-i", f"{work}/busybox.tar")
        timed(cli + ["run", "--rm", "--network", "none", "bench/busybox:1", "true"])
    except Exception as e:
        print(f"docker not measured: {e}", file=sys.stderr)
        return None
    return {"docker": lambda: timed(cli + ["run", "--rm", "--network", "none", "bench/busybox:1", "true"])}

def main():
    env = setup()
    engines = {"berth": lambda: timed([berth, "run", "--rm", "--network", "none", "bench/busybox:1", "true"], env)}
    try:
        timed([berth, "run", "--rm", "bench/busybox:1", "true"], env)
        engines["berth (bridge)"] = lambda: timed([berth, "run", "--rm", "bench/busybox:1", "true"], env)
    except Exception as e:
        print(f"berth bridge not measured: {e}", file=sys.stderr)
    for make in (podman_engine, docker_engine):
        engines.update(make() or {})
    samples = {name: [] for name in engines}
    for name, run in engines.items():
        run()   # warm caches once each
    for _ in range(N):
        for name, run in engines.items():
            samples[name].append(run())
    print(f"\n### run --rm IMG true (N={N}, interleaved; ms)\n")
    print("| engine | median | p90 | vs podman on the same network |")
    print("|---|---|---|---|")
    for name, s in samples.items():
        med, p90 = stats(s)
        peer = "podman (bridge)" if name.endswith("(bridge)") else "podman"
        base = stats(samples[peer])[0] if peer in samples else None
        ratio = f"{med / base:.2f}x" if base else "n/a"
        print(f"| {name} | {med:.1f} | {p90:.1f} | {ratio} |")

    # 50 detached containers started at once, then monitor RSS with 100 running.
    t = time.perf_counter()
    procs = [subprocess.Popen([berth, "run", "-d", "--network", "none", "bench/busybox:1", "sleep", "1000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(50)]
    failures = sum(1 for p in procs if p.wait() != 0)
    print(f"\n50 concurrent `berth run -d`: {time.perf_counter() - t:.2f} s ({failures} failed)")
    more = [subprocess.Popen([berth, "run", "-d", "--network", "none", "bench/busybox:1", "sleep", "1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(50)]
    for p in more:
        p.wait()
    # RSS counts the binary's pages every monitor shares (page cache); PSS divides them among the
    # monitors, and the private dirty pages are what each one alone costs.
    rss, pss, private = [], [], []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "berth-monitor":
                    continue
            with open(f"/proc/{pid}/cmdline") as f:
                if work not in f.read():  # only this benchmark's monitors
                    continue
            with open(f"/proc/{pid}/smaps_rollup") as f:
                fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split(":")[0] in ("Rss", "Pss", "Private_Dirty")}
            rss.append(fields["Rss"]); pss.append(fields["Pss"]); private.append(fields["Private_Dirty"])
        except (OSError, KeyError, ValueError):
            pass
    if rss:
        print(f"monitors: {len(rss)} running; per monitor RSS {statistics.median(rss) / 1024:.2f} MB, "
              f"PSS {statistics.median(pss) / 1024:.2f} MB, private dirty {statistics.median(private) / 1024:.2f} MB")
    ids = sh(berth, "ps", "-aq", "--no-trunc", env=env).stdout.split()
    if ids:
        subprocess.run([berth, "rm", "-f"] + ids, capture_output=True, env=env)

try:
    main()
finally:
    for p in started:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    if podman_bridge:
        # The bridge podman's CNI config made (its iptables chains are CNI's shared ones, also Berth's).
        subprocess.run(["ip", "link", "del", "cni-podman0"], capture_output=True)
    subprocess.run(["umount", "-l", work], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
