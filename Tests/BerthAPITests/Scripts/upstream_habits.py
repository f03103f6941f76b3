"""What the official kubernetes Python client relies on kube-apiserver doing (issue 14, part 5):
field selectors on absent fields, metadata kept by status writes, immutable ConfigMaps and Secrets,
406 for a Table-only Accept where there is no table. Exits non-zero with the failed check on stderr.
"""
import json
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()


def refused(call, status):
    try:
        call()
    except ApiException as e:
        body = e.body.decode() if isinstance(e.body, bytes) else str(e.body)
        assert e.status == status, (e.status, body)
        return body
    raise AssertionError(f"expected {status}")


# A node created without spec.unschedulable is schedulable: `spec.unschedulable=false` selects it.
v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="plain")))
v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="cordoned"), spec=client.V1NodeSpec(unschedulable=True)))
free = v1.list_node(field_selector="spec.unschedulable=false")
assert [n.metadata.name for n in free.items] == ["plain"], [n.metadata.name for n in free.items]
body = refused(lambda: v1.list_node(field_selector="spec.bogus=1"), 400)
assert "field label not supported: spec.bogus" in body, body

# Status writes keep the metadata they carry (Namespace and Service status strategies reset only spec).
v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team")))
v1.patch_namespace_status("team", {"metadata": {"labels": {"seen": "yes"}}})
assert v1.read_namespace("team").metadata.labels.get("seen") == "yes"
v1.create_namespaced_service("team", client.V1Service(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
svc = v1.read_namespaced_service_status("web", "team")
svc.metadata.annotations = {"lb": "assigned"}
svc.status.load_balancer = client.V1LoadBalancerStatus(ingress=[client.V1LoadBalancerIngress(ip="127.0.0.9")])
v1.replace_namespaced_service_status("web", "team", svc)
svc = v1.read_namespaced_service("web", "team")
assert svc.metadata.annotations.get("lb") == "assigned", svc.metadata
assert svc.status.load_balancer.ingress[0].ip == "127.0.0.9"

# An immutable Secret refuses data changes (422) and the unsetting of immutable; it can be deleted.
v1.create_namespaced_secret("team", client.V1Secret(
    metadata=client.V1ObjectMeta(name="sealed"), string_data={"k": "v"}, immutable=True))
body = refused(lambda: v1.patch_namespaced_secret("sealed", "team", {"stringData": {"k": "w"}}), 422)
assert "data: Forbidden: field is immutable when `immutable` is set" in body, body
body = refused(lambda: v1.patch_namespaced_secret("sealed", "team", {"immutable": False}), 422)
assert "immutable: Forbidden: field is immutable when `immutable` is set" in body, body
v1.patch_namespaced_secret("sealed", "team", {"metadata": {"labels": {"still": "editable"}}})
v1.delete_namespaced_secret("sealed", "team")

# A SelfSubjectAccessReview has no table: Table as the only acceptable type is 406, with JSON after it 201.
authz = client.AuthorizationV1Api()
review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
    resource_attributes=client.V1ResourceAttributes(verb="list", resource="pods")))
table = "application/json;as=Table;v=v1;g=meta.k8s.io"
body = refused(lambda: authz.create_self_subject_access_review(review, _headers={"Accept": table}), 406)
assert json.loads(body)["reason"] == "NotAcceptable", body
answer = authz.create_self_subject_access_review(review, _headers={"Accept": table + ", application/json"})
assert answer.status.allowed is True, answer
print("OK")
