"""What the CRI benchmarks share (bench-cri.py, bench-pods.py): a local registry, free ports, the
processes they started stopped, and what a run left on the host removed — Berth's containers, mounts
under the run's directory, its cgroups, CNI's cached results naming it."""
import os, signal, socket, subprocess, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))


class Store:
    """Where a benchmark's runtimes keep everything (images, containers, CNI state, logs), the same for
    every runtime in the run. STORE=ext4 (the default): a fresh journaled ext4 on a loop file, as a
    typical host's; host: a directory under /var/tmp (this machine's root is ext4 without a journal,
    whose inode allocation scans the inodes deleted in the last minute: file creation grows slow with
    churn); tmpfs: memory. TMPFS=1 is STORE=tmpfs."""

    def __init__(self, prefix):
        self.kind = os.environ.get("STORE", "tmpfs" if os.environ.get("TMPFS") == "1" else "ext4")
        if self.kind not in ("ext4", "host", "tmpfs"):
            raise SystemExit(f"STORE={self.kind}: expected ext4, host or tmpfs")
        self.path = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
        self.image = None
        if self.kind == "tmpfs":
            sh("mount", "-t", "tmpfs", "-o", "size=4g", prefix.rstrip("-"), self.path)
        elif self.kind == "ext4":
            self.image = self.path + ".img"
            sh("truncate", "-s", "8G", self.image)
            sh("mkfs.ext4", "-q", "-F", self.image)
            sh("mount", "-o", "loop", self.image, self.path)

    def describe(self):
        return {"ext4": "a fresh ext4 (journaled, loop file)", "tmpfs": "tmpfs",
                "host": "/var/tmp (" + subprocess.run(["stat", "-f", "-c", "%T", self.path], capture_output=True,
                                                      text=True).stdout.strip() + ")"}[self.kind]

    def remove(self):
        """After everything in it is stopped and its mounts are gone."""
        if self.kind != "host":
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        subprocess.run(["rm", "-rf", self.path])
        if self.image and os.path.exists(self.image):
            os.unlink(self.image)


def sh(*args, env=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(work, procs):
    """Debian's docker-registry on a free port, its storage under `work`; returns HOST:PORT."""
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


def terminate(processes):
    """SIGTERM, then SIGKILL after 30 s, to each process still running."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def remove_leftovers(berth, work, engine_root, run, cgroup):
    """After the processes are gone: containerd (if the run started one), Berth's containers left in
    `engine_root` (none when every delete finished), mounts under `work`, cgroups whose path contains
    `cgroup`, CNI results naming `work` (containerd's loopback, left when it stops with pods), `work`."""
    if os.path.exists(f"{work}/containerd"):
        subprocess.run([os.path.join(here, "containerd-cri.sh"), "stop", f"{work}/containerd"], capture_output=True)
    env = dict(os.environ, BERTH_RUN=run)
    if os.path.exists(engine_root):
        ids = subprocess.run([berth, "ps", "-aq", "--root", engine_root], capture_output=True, text=True,
                             env=env).stdout.split()
        if ids:
            subprocess.run([berth, "rm", "-f", "--root", engine_root] + ids, capture_output=True, env=env)
    subprocess.run(["sh", "-c", f"grep ' {work}/' /proc/self/mountinfo | cut -d' ' -f5 | sort -r | "
                    "xargs -r -n1 umount -l"], capture_output=True)
    subprocess.run(["find", "/sys/fs/cgroup", "-depth", "-type", "d", "-path", f"*{cgroup}*", "-exec", "rmdir", "{}",
                    ";"], capture_output=True)
    subprocess.run(["sh", "-c", f"grep -l -s -F '{work}/' /var/lib/cni/results/* | xargs -r rm -f"],
                   capture_output=True)
