#!/usr/bin/env bash
# Debian's containerd (1.6) with its CRI plugin on a private socket, for the node agent's tests against
# a CRI runtime that is not Berth's (`berth server --container-runtime-endpoint unix://DIR/containerd.sock`).
#
#   scripts/containerd-cri.sh start DIR REGISTRY   REGISTRY (127.0.0.1:PORT, a docker-registry already
#                                                   serving) gets DIR's test images pushed to it: busybox
#                                                   (REGISTRY/busybox:1) and a pause image (REGISTRY/pause:1,
#                                                   busybox `sleep infinity`, the sandbox image)
#   scripts/containerd-cri.sh stop DIR             ends that containerd and what it left
#
# Everything lives under DIR: root, state, the runc root, the CNI config (bridge ctrcri0 on 10.99.0.0/16,
# host-local IPAM, no masquerade: the host's firewall is not touched), network namespaces (under the
# state dir), containerd.log. containerd pulls from loopback registries over plain HTTP by itself.
# restrict_oom_score_adj: root here may lack CAP_SYS_RESOURCE, and containerd's sandbox would ask for
# -998. Only the PID recorded at start (checked against its start time) and shims naming DIR's socket
# are ever signalled.
set -euo pipefail
command=${1:-}; B=${2:-}
[[ -n $B && ( $command == start || $command == stop ) ]] || { echo "usage: $0 start DIR REGISTRY | stop DIR" >&2; exit 2; }
SOCK=$B/containerd.sock PIDF=$B/containerd.pid
starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
our_pid() { local p s; [[ -s $PIDF ]] || return 1; read -r p s <"$PIDF"; [[ -n ${p:-} && "$(starttime "$p")" == "${s:-x}" ]] && echo "$p"; }
answers() { ctr --address "$SOCK" plugins ls 2>/dev/null | awk '$2=="cri" && $NF=="ok"' | grep -q .; }

if [[ $command == stop ]]; then
  set +e
  C=(ctr --address "$SOCK" --namespace k8s.io)
  if pid=$(our_pid); then
    if "${C[@]}" version >/dev/null 2>&1; then
      for t in $("${C[@]}" tasks ls -q 2>/dev/null); do "${C[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
      for _ in $(seq 50); do [[ -z $("${C[@]}" tasks ls 2>/dev/null | awk 'NR>1 && $3!="STOPPED"') ]] && break; sleep 0.1; done
      for t in $("${C[@]}" tasks ls -q 2>/dev/null); do "${C[@]}" tasks delete -f "$t" >/dev/null 2>&1; done
      for c in $("${C[@]}" containers ls -q 2>/dev/null); do "${C[@]}" containers delete "$c" >/dev/null 2>&1; done
    fi
    kill -TERM "$pid"
    for _ in $(seq 200); do our_pid >/dev/null || break; sleep 0.1; done
    our_pid >/dev/null && kill -KILL "$pid"
  fi
  rm -f "$PIDF"
  for d in /proc/[0-9]*; do
    [[ $(cat "$d/comm" 2>/dev/null) == containerd-shim* ]] || continue
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -- "-address $SOCK " && kill -KILL "${d#/proc/}" 2>/dev/null
  done
  awk -v b="$B/" 'index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  ip link show ctrcri0 >/dev/null 2>&1 && ip link del ctrcri0
  rm -f /var/lib/cni/results/ctr-cri-*
  rm -rf "$B"
  rmdir /run/containerd/s /run/containerd 2>/dev/null
  exit 0
fi

REGISTRY=${3:?the registry (127.0.0.1:PORT) to push the test images to}
if pid=$(our_pid) && answers; then echo "containerd CRI already running (pid $pid) on $SOCK" >&2; exit 0; fi
mkdir -p "$B"/{root,state,runc,cni/net.d,cni/ipam,images}

# The test images, from Debian's busybox-static: every applet, Cmd sh; and the pause image.
L=$B/images/layout
umoci init --layout "$L" && umoci new --image "$L:latest"
umoci unpack --image "$L:latest" "$B/images/bundle" >/dev/null
r=$B/images/bundle/rootfs
mkdir -p "$r"/{bin,etc,tmp,root,proc,sys,dev,var/tmp,www}
chmod 1777 "$r/tmp" "$r/var/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
echo "served by a pod" >"$r/www/index.html"
install -m 0755 /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"; done
umoci repack --refresh-bundle --image "$L:latest" "$B/images/bundle" >/dev/null
umoci config --image "$L:latest" --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.workingdir / \
  --architecture amd64 --os linux
umoci config --image "$L:latest" --tag pause --config.entrypoint /bin/sleep --config.entrypoint infinity --clear config.cmd
rm -rf "$B/images/bundle"
skopeo copy -q --dest-tls-verify=false "oci:$L:latest" "docker://$REGISTRY/busybox:1"
skopeo copy -q --dest-tls-verify=false "oci:$L:pause" "docker://$REGISTRY/pause:1"

cat >"$B/cni/net.d/10-ctr-cri.conflist" <<EOC
{"cniVersion": "0.4.0", "name": "ctr-cri", "plugins": [{"type": "bridge", "bridge": "ctrcri0", "isGateway": true,
 "ipMasq": false, "hairpinMode": true, "ipam": {"type": "host-local", "dataDir": "$B/cni/ipam",
 "ranges": [[{"subnet": "10.99.0.0/16", "gateway": "10.99.0.1"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOC
cat >"$B/containerd.toml" <<EOC
version = 2
root = "$B/root"
state = "$B/state"
oom_score = 0
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$B/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$B/cni/net.d"
    max_conf_num = 1
EOC
setsid containerd --config "$B/containerd.toml" >>"$B/containerd.log" 2>&1 </dev/null &
pid=$!
sleep 0.1
st=$(starttime "$pid") || true
[[ -n $st ]] || { tail -20 "$B/containerd.log" >&2; echo "containerd exited at once" >&2; exit 1; }
echo "$pid $st" >"$PIDF"
for _ in $(seq 300); do answers && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
answers || { tail -30 "$B/containerd.log" >&2; echo "containerd did not bring up its CRI plugin" >&2; exit 1; }
echo "containerd $(containerd --version | awk '{print $3}') serves the CRI on unix://$SOCK (pid $pid)" >&2
