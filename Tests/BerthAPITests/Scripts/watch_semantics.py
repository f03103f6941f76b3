"""List/watch semantics through the official kubernetes Python client.

Phase 1 (before compaction): pagination, selectors, watch from a resourceVersion, bookmarks.
Prints "OLD <rv> <continue>" and waits for a line on stdin (the test compacts the store meanwhile).
Phase 2: a watch from the old resourceVersion and the old continue token must both fail with 410.
"""
import sys
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
ns = "pyclient"
v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
for i in range(7):
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"cm{i}", labels={"parity": "even" if i % 2 == 0 else "odd"}), data={"i": str(i)}))

# limit/continue
names, cont, first_continue = [], None, None
while True:
    page = v1.list_namespaced_config_map(ns, limit=3, _continue=cont)
    names += [c.metadata.name for c in page.items]
    cont = page.metadata._continue
    if first_continue is None:
        first_continue = cont
    if not cont:
        break
assert names == [f"cm{i}" for i in range(7)], names

# label and field selectors
even = v1.list_namespaced_config_map(ns, label_selector="parity=even")
assert sorted(c.metadata.name for c in even.items) == ["cm0", "cm2", "cm4", "cm6"]
one = v1.list_namespaced_config_map(ns, field_selector="metadata.name=cm3")
assert [c.metadata.name for c in one.items] == ["cm3"]

# 409 on a stale resourceVersion
cm = v1.read_namespaced_config_map("cm0", ns)
stale = cm.metadata.resource_version
cm.data = {"i": "changed"}
v1.replace_namespaced_config_map("cm0", ns, cm)
cm.metadata.resource_version = stale
try:
    v1.replace_namespaced_config_map("cm0", ns, cm)
    raise SystemExit("expected 409")
except ApiException as e:
    assert e.status == 409, e.status

# watch from a resourceVersion: only later changes arrive, in order, then a bookmark
rv = v1.list_namespaced_config_map(ns).metadata.resource_version
v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"), data={"a": "b"}))
v1.delete_namespaced_config_map("cm1", ns)
seen, bookmark = [], None
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=20):
    if ev["type"] == "BOOKMARK":
        raw = ev["raw_object"] if "raw_object" in ev else ev["object"]
        bookmark = raw["metadata"]["resourceVersion"] if isinstance(raw, dict) else raw.metadata.resource_version
        break
    seen.append((ev["type"], ev["object"].metadata.name))
w.stop()
assert seen == [("ADDED", "late"), ("DELETED", "cm1")], seen
assert bookmark is not None and int(bookmark) >= int(rv), bookmark
print("OLD", rv, first_continue, flush=True)
sys.stdin.readline()

# after compaction: watch from the old version → 410 Gone; old continue token → 410
try:
    for ev in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
        if ev["type"] == "ERROR":
            raise ApiException(status=ev["raw_object"]["code"])
    raise SystemExit("expected 410 from watch")
except ApiException as e:
    assert e.status == 410, e.status
try:
    v1.list_namespaced_config_map(ns, limit=3, _continue=first_continue)
    raise SystemExit("expected 410 from list")
except ApiException as e:
    assert e.status == 410, e.status
print("OK", flush=True)
