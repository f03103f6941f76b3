"""Drives a StatefulSet with the official client's typed models: create, read back (every model's
required fields present, or deserialising fails), scale through /scale, list its ControllerRevisions
and claims. Prints "ok" at the end; exits 1 with the reason on the first failure.
Arguments: kubeconfig namespace.
"""
import sys
import time

from kubernetes import client, config

kubeconfig, ns = sys.argv[1], sys.argv[2]
config.load_kube_config(config_file=kubeconfig)
apps = client.AppsV1Api()
core = client.CoreV1Api()


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def wait(what, check, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    fail("timed out waiting for " + what)


claim = client.V1PersistentVolumeClaim(
    metadata=client.V1ObjectMeta(name="data"),
    spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"})))
apps.create_namespaced_stateful_set(ns, client.V1StatefulSet(
    metadata=client.V1ObjectMeta(name="db"),
    spec=client.V1StatefulSetSpec(
        replicas=2, selector=client.V1LabelSelector(match_labels={"app": "db"}), volume_claim_templates=[claim],
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "db"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="db", image="registry.local/db:1")])))))

sts = wait("2 ready replicas", lambda: (lambda s: s if (s.status.ready_replicas or 0) == 2 else None)(
    apps.read_namespaced_stateful_set("db", ns)))
if sts.spec.pod_management_policy != "OrderedReady" or sts.spec.update_strategy.rolling_update.partition != 0:
    fail("defaults: %s %s" % (sts.spec.pod_management_policy, sts.spec.update_strategy))
if sts.status.current_revision != sts.status.update_revision or not sts.status.update_revision.startswith("db-"):
    fail("revisions: %s %s" % (sts.status.current_revision, sts.status.update_revision))

scale = apps.read_namespaced_stateful_set_scale("db", ns)
if scale.spec.replicas != 2 or scale.status.selector != "app=db":
    fail("scale: %s" % scale)
apps.patch_namespaced_stateful_set_scale("db", ns, {"spec": {"replicas": 3}})
wait("3 ready replicas", lambda: (apps.read_namespaced_stateful_set("db", ns).status.ready_replicas or 0) == 3)

revisions = apps.list_namespaced_controller_revision(ns, label_selector="app=db").items
if len(revisions) != 1 or revisions[0].revision != 1 or revisions[0].metadata.name != sts.status.update_revision:
    fail("revisions: %s" % [(r.metadata.name, r.revision) for r in revisions])
names = sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items)
if names != ["data-db-0", "data-db-1", "data-db-2"]:
    fail("claims: %s" % names)
print("ok", flush=True)
