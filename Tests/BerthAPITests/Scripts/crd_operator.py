"""An operator's flow with the official kubernetes Python client (issue 16): a CustomResourceDefinition
created through ApiextensionsV1Api, a controller of this script's own watching its custom resources and
writing their status, the scale subresource, and the delete seen by the watch. Exits non-zero with the
failed check on stderr.
"""
import sys
import threading
import time
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
ext = client.ApiextensionsV1Api()
custom = client.CustomObjectsApi()
G, V, P = "ops.example.com", "v1", "databases"

ext.create_custom_resource_definition({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": P + "." + G},
    "spec": {"group": G, "scope": "Namespaced",
             "names": {"plural": P, "singular": "database", "kind": "Database", "shortNames": ["db"]},
             "versions": [{"name": V, "served": True, "storage": True,
                           "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                    "statusReplicasPath": ".status.replicas"}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "engine": {"type": "string", "enum": ["postgres", "mysql"]},
                                   "replicas": {"type": "integer", "default": 1}}},
                               "status": {"type": "object", "properties": {
                                   "replicas": {"type": "integer"}, "phase": {"type": "string"}}}}}}}]}})

deadline = time.time() + 20
while True:
    crd = ext.read_custom_resource_definition(P + "." + G)
    conds = {c.type: c.status for c in (crd.status.conditions or [])}
    if conds.get("Established") == "True":
        break
    assert time.time() < deadline, "CRD not established: %r" % conds
    time.sleep(0.1)

seen = []
ready = threading.Event()


def controller():
    """Reconciles every Database: status.replicas follows spec.replicas, phase Ready."""
    w = watch.Watch()
    ready.set()
    for event in w.stream(custom.list_namespaced_custom_object, G, V, "default", P, timeout_seconds=30):
        obj = event["object"]
        seen.append((event["type"], obj["metadata"]["name"]))
        if event["type"] == "DELETED":
            w.stop()
            return
        want = obj["spec"].get("replicas")
        if obj.get("status", {}).get("replicas") != want:
            custom.patch_namespaced_custom_object_status(
                G, V, "default", P, obj["metadata"]["name"], {"status": {"replicas": want, "phase": "Ready"}})


t = threading.Thread(target=controller, daemon=True)
t.start()
ready.wait()
created = custom.create_namespaced_custom_object(G, V, "default", P, {
    "apiVersion": G + "/" + V, "kind": "Database", "metadata": {"name": "orders"}, "spec": {"engine": "postgres"}})
assert created["spec"]["replicas"] == 1, created

try:
    custom.create_namespaced_custom_object(G, V, "default", P, {
        "apiVersion": G + "/" + V, "kind": "Database", "metadata": {"name": "bad"}, "spec": {"engine": "oracle"}})
    raise AssertionError("an engine outside the enum was accepted")
except ApiException as e:
    assert e.status == 422 and "Unsupported value" in str(e.body), (e.status, e.body)


def wait_status(replicas):
    deadline = time.time() + 20
    while time.time() < deadline:
        obj = custom.get_namespaced_custom_object(G, V, "default", P, "orders")
        if obj.get("status", {}).get("replicas") == replicas and obj["status"].get("phase") == "Ready":
            return obj
        time.sleep(0.1)
    raise AssertionError("status never reached %d replicas: %r" % (replicas, obj))


wait_status(1)
custom.patch_namespaced_custom_object_scale(G, V, "default", P, "orders", {"spec": {"replicas": 4}})
obj = wait_status(4)
assert obj["spec"]["replicas"] == 4, obj
scale = custom.get_namespaced_custom_object_scale(G, V, "default", P, "orders")
assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 4, scale

custom.delete_namespaced_custom_object(G, V, "default", P, "orders")
t.join(20)
assert ("ADDED", "orders") in seen and ("DELETED", "orders") in seen, seen
print("ok")
