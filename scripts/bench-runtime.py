#!/usr/bin/env python3
"""Runtime benchmark: N sequential `run` of /bin/true from the same busybox bundle under berth-runtime,
runc and crun, side by side in one run; median and p90 per container, ratios, and peak RSS of `create`.

crun 1.8 refuses this host's hybrid cgroup layout (a cgroup2 mount that lists hugetlb); like the peer
harness, crun runs in a private mount namespace whose /sys/fs/cgroup holds only the v1 hierarchies
(made here with unshare + tmpfs + bind mounts; the host's mounts are untouched). runc is timed both in
the host view and in that view, so the comparison with crun is like for like.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

N = int(os.environ.get("N", "100"))
here = os.path.dirname(os.path.abspath(__file__))
berth = os.environ.get("BERTH_RUNTIME") or os.path.join(here, "..", ".build", "release", "berth-runtime")
work = None   # made in main(): a tmpfs directory, the same store for every runtime

def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)

def make_bundle():
    bundle = os.path.join(work, "bundle")
    subprocess.run([os.path.join(here, "make-bundle.sh"), bundle, berth, "--", "/bin/true"], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["linux"]["cgroupsPath"] = "/berth-bench/c"
    config["ociVersion"] = "1.0.2"   # crun 1.8 knows runtime-spec 1.0.x only   # every runtime in a cgroup of its own, not nested in ours
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle

LEGACY = r'''
set -e
mount -t tmpfs -o mode=755 cgroup-legacy /sys/fs/cgroup
for d in $(cat "$CGROUP_LIST"); do mkdir -p /sys/fs/cgroup/$d; mount --bind "$CGROUP_HOST/$d" /sys/fs/cgroup/$d; done
exec "$@"
'''

def legacy_prefix():
    """Run a command in a private mount ns that shows only the v1 cgroup hierarchies (for crun 1.8)."""
    host = os.path.join(work, "host-cgroup")
    os.makedirs(host, exist_ok=True)
    # Keep a handle on the host hierarchy before /sys/fs/cgroup is covered by the tmpfs.
    names = [d for d in os.listdir("/sys/fs/cgroup") if d != "unified" and os.path.ismount(f"/sys/fs/cgroup/{d}")]
    listfile = os.path.join(work, "cgroups.txt")
    with open(listfile, "w") as f:
        f.write("\n".join(names))
    script = os.path.join(work, "legacy.sh")
    with open(script, "w") as f:
        f.write(LEGACY.replace("$CGROUP_HOST", host).replace("$CGROUP_LIST", listfile))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f"mount --rbind /sys/fs/cgroup {host} && sh {script} \"$@\"", "legacy"]

ROUNDS = int(os.environ.get("ROUNDS", "5"))

def block(name, command_for, count, offset, prefix=None):
    """`count` timed runs (after 3 warm-ups), in ms. With `prefix` (the v1-only view), the block runs
    inside one private mount namespace, so the view is set up once and not counted in any run."""
    if prefix:
        probe = command_for("PLACEHOLDER")
        r = subprocess.run(prefix + [sys.executable, os.path.abspath(__file__), "--inner", name, json.dumps(probe),
                                     str(count), str(offset)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{name}: {r.stderr[-300:]}", file=sys.stderr)
            return None
        return json.loads(r.stdout.strip().splitlines()[-1])
    times = []
    for i in range(count + 3):
        slug = "".join(ch if ch.isalnum() else "-" for ch in name)
        cmd = command_for(f"bench-{slug}-{offset + i}")
        start = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - start) * 1000
        if r.returncode != 0:
            print(f"{name}: run failed: {r.stderr.decode()[:300]}", file=sys.stderr)
            return None
        if i >= 3:
            times.append(elapsed)
    return times

def summary(times):
    times = sorted(times)
    return {"median": statistics.median(times), "p90": times[max(0, int(0.9 * len(times) + 0.999) - 1)],
            "min": times[0], "max": times[-1]}

def measure_all(runtimes):
    """N runs of each runtime, interleaved in ROUNDS blocks (berth, runc, crun, berth, …) so that drift in
    the machine's state — RCU grace periods, background work — falls on every runtime alike."""
    times = {name: [] for name, _, _ in runtimes}
    per_round = max(1, N // ROUNDS)
    for round_index in range(ROUNDS):
        for name, command_for, prefix in runtimes:
            if times[name] is None:
                continue
            got = block(name, command_for, per_round, round_index * (per_round + 3), prefix)
            times[name] = None if got is None else times[name] + got
    return {name: (summary(t) if t else None) for name, t in times.items()}

def create_rss(binary, bundle, root, prefix=()):
    """Peak RSS (kB) of `create` (the runtime process), and cleans up.

    Measured by GNU time around the runtime alone: a wait4() from this script would also count the
    forked Python child's memory before its exec (Linux keeps the pre-exec high-water mark), which put
    every runtime at Python's ~15 MB."""
    cid = "bench-rss"
    out = os.path.join(work, "rss.txt")
    subprocess.run(list(prefix) + ["/usr/bin/time", "-f", "%M", "-o", out, binary, "--root", root, "create", "--bundle", bundle, cid],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(list(prefix) + [binary, "--root", root, "delete", "--force", cid], capture_output=True)
    try:
        with open(out) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None

def main():
    global work
    work = tempfile.mkdtemp(prefix="berth-bench-", dir="/run")
    if not os.path.exists(berth):
        sys.exit(f"no berth-runtime at {berth}: run `make release` first")
    bundle = make_bundle()
    legacy = legacy_prefix()
    roots = {n: os.path.join(work, "state-" + n) for n in ("berth", "runc", "crun", "runc-legacy")}
    runtimes = [("berth-runtime", lambda c: [berth, "--root", roots["berth"], "run", "--bundle", bundle, c], None)]
    if shutil.which("runc"):
        runtimes.append(("runc", lambda c: ["runc", "--root", roots["runc"], "run", "--bundle", bundle, c], None))
        runtimes.append(("runc (v1-only view)", lambda c: ["runc", "--root", roots["runc-legacy"], "run", "--bundle", bundle, c], legacy))
    if shutil.which("crun"):
        runtimes.append(("crun (v1-only view)", lambda c: ["crun", "--root", roots["crun"], "run", "--bundle", bundle, c], legacy))
    runs = measure_all(runtimes)
    rss = {"berth-runtime": create_rss(berth, bundle, roots["berth"])}
    if shutil.which("runc"):
        rss["runc"] = create_rss(shutil.which("runc"), bundle, roots["runc"])
    if shutil.which("crun"):
        rss["crun (v1-only view)"] = create_rss(shutil.which("crun"), bundle, roots["crun"], legacy)

    print(f"\n## OCI runtime: {N} sequential `run` of /bin/true per runtime, interleaved in {ROUNDS} rounds (busybox bundle, bundle on tmpfs)\n")
    print("| runtime | median ms | p90 ms | min | max | berth ÷ this (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    ours = runs["berth-runtime"]["median"] if runs.get("berth-runtime") else None
    for name, r in runs.items():
        if r is None:
            print(f"| {name} | failed | | | | |")
            continue
        ratio = f"{ours / r['median']:.2f}×" if ours else "-"
        print(f"| {name} | {r['median']:.1f} | {r['p90']:.1f} | {r['min']:.1f} | {r['max']:.1f} | {ratio} |")
    print("\nPeak RSS of the runtime process during `create` (GNU time): "
          + ", ".join(f"{k} {v / 1024:.1f} MB" if v else f"{k} not measured" for k, v in rss.items()))
    shutil.rmtree(work, ignore_errors=True)
    for d in os.listdir("/sys/fs/cgroup"):
        for sub in ("berth-bench/c", "berth-bench"):
            try: os.rmdir(f"/sys/fs/cgroup/{d}/{sub}")
            except OSError: pass

if __name__ == "__main__":
    if len(sys.argv) > 5 and sys.argv[1] == "--inner":
        template = json.loads(sys.argv[3])
        result = block(sys.argv[2], lambda c: [c if a == "PLACEHOLDER" else a for a in template], int(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(result))
    else:
        main()
