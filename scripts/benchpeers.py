"""What the engine benchmarks share: timing helpers and how the peers (podman, a private dockerd) are
started on a benchmark's own tmpfs, so that every engine keeps its store on the same filesystem."""
import os, statistics, subprocess, time


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def timed(args, env=None, stdout=subprocess.DEVNULL):
    """Wall time of one command; a failure raises with its stderr."""
    t = time.perf_counter()
    r = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()[:300]}")
    return elapsed


def stats(samples):
    """(median, p90) in milliseconds."""
    s = sorted(samples)
    return statistics.median(s) * 1000, s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))] * 1000


def podman_command(work, insecure_registry=None):
    """podman's global arguments and environment for a store under `work`: runc (crun 1.8, podman's
    default here, refuses this hybrid cgroup host), cgroupfs, file events, CNI configs of our own, and
    ulimits this root can set (it lacks CAP_SYS_RESOURCE: podman's defaults exceed the hard limits)."""
    conf = os.path.join(work, "containers.conf")
    nofile = os.popen("ulimit -Hn").read().strip()
    with open(conf, "w") as f:
        f.write(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n')
    env = dict(os.environ, CONTAINERS_CONF=conf)
    if insecure_registry:
        registries = os.path.join(work, "registries.conf")
        with open(registries, "w") as f:
            f.write(f'[[registry]]\nlocation = "{insecure_registry}"\ninsecure = true\n')
        env["CONTAINERS_REGISTRIES_CONF"] = registries
    base = ["podman", "--root", f"{work}/podman", "--runroot", f"{work}/podman-run", "--storage-driver", "overlay", "--runtime", "runc",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--network-config-dir", f"{work}/podman-net"]
    return base, env


def start_dockerd(work):
    """A private dockerd (own data root, exec root and socket; no bridge, no iptables: the host's
    network is untouched) and the CLI arguments that reach it, once it answers."""
    sock = f"{work}/docker.sock"
    log = open(f"{work}/dockerd.log", "w")
    proc = subprocess.Popen(["dockerd", "--data-root", f"{work}/docker", "--exec-root", f"{work}/docker-exec",
                             "--pidfile", f"{work}/docker.pid", "-H", f"unix://{sock}", "--iptables=false",
                             "--ip-forward=false", "--ip-masq=false", "--bridge=none"], stdout=log, stderr=log)
    cli = ["docker", "-H", f"unix://{sock}"]
    for _ in range(600):
        if proc.poll() is not None or subprocess.run(cli + ["version"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    return proc, sock
