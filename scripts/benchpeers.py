"""What the engine benchmarks share: timing helpers and how the peers (podman, a private dockerd) are
started on a benchmark's own tmpfs, so that every engine keeps its store on the same filesystem."""
import ctypes, fcntl, os, socket, statistics, struct, subprocess, threading, time


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


def start_dockerd(work, netns=False, forward=()):
    """A private dockerd (own data root, exec root and socket) and the CLI arguments that reach it, once
    it answers. By default with no bridge and no iptables: the host's network is untouched.

    netns=True: docker's stock networking instead (docker0, iptables, ip forwarding, masquerade) in a
    network namespace of its own, as ../shared/peers/docker-netns.sh runs it: every bridge, sysctl and
    firewall rule dockerd makes belongs to that namespace and goes with it. Its socket is a path, so the
    CLI reaches it from the host's namespace. `forward`: ports of the host's 127.0.0.1 (a registry)
    that dockerd reaches at the same address from inside (see forward_into)."""
    sock = f"{work}/docker.sock"
    log = open(f"{work}/dockerd.log", "w")
    command = ["dockerd", "--data-root", f"{work}/docker", "--exec-root", f"{work}/docker-exec",
               "--pidfile", f"{work}/docker.pid", "-H", f"unix://{sock}"]
    if netns:
        # unshare(1) without --fork execs dockerd in the new namespace: proc.pid is dockerd's.
        command = ["unshare", "--net", "--"] + command
    else:
        command += ["--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"]
    proc = subprocess.Popen(command, stdout=log, stderr=log)
    if netns:
        try:
            namespace = wait_for_own_netns(proc)
            in_netns(namespace, loopback_up)
            for port in forward:
                forward_into(namespace, port)
        except Exception as err:
            print(f"dockerd's network namespace: {err}", file=log, flush=True)
            proc.kill()
            proc.wait()
            return proc, sock
    cli = ["docker", "-H", f"unix://{sock}"]
    for _ in range(600):
        if proc.poll() is not None or subprocess.run(cli + ["version"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    return proc, sock


CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def wait_for_own_netns(proc):
    """/proc/PID/ns/net of `proc` once unshare(1) has moved it out of ours."""
    ours = os.readlink("/proc/self/ns/net")
    path = f"/proc/{proc.pid}/ns/net"
    for _ in range(500):
        if proc.poll() is not None:
            raise RuntimeError(f"unshare --net exited {proc.returncode}")
        try:
            if os.readlink(path) != ours:
                return path
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("dockerd did not leave the host's network namespace")


def in_netns(path, fn):
    """Runs fn() in the network namespace at `path`, on a thread of its own (setns(2) moves only the
    calling thread, so the rest of this process stays in the host's namespace). Sockets fn() makes
    stay in that namespace."""
    failure = []

    def run():
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {path}: {os.strerror(err)}")
            fn()
        except Exception as err:
            failure.append(err)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def loopback_up():
    """`ip link set lo up` in the calling thread's namespace (SIOCGIFFLAGS, then SIOCSIFFLAGS | IFF_UP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22s", b"lo", 0, b"")
        flags = struct.unpack("16sH22s", fcntl.ioctl(s, 0x8913, request))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22s", b"lo", flags | 0x1, b""))


def forward_into(namespace, port):
    """Listens on 127.0.0.1:port inside `namespace` and relays each connection to 127.0.0.1:port of the
    host's namespace (the registry the benchmark started), from threads of this process."""
    listener = []

    def listen():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        listener.append(s)

    in_netns(namespace, listen)

    def pump(source, sink):
        try:
            while True:
                data = source.recv(1 << 20)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def accept():
        while True:
            try:
                inside, _ = listener[0].accept()
            except OSError:
                return
            try:
                # This thread is in the host's namespace: the registry's 127.0.0.1.
                outside = socket.create_connection(("127.0.0.1", port))
            except OSError:
                inside.close()
                continue
            for source, sink in ((inside, outside), (outside, inside)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener[0]
