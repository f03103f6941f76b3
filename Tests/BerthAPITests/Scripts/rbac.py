"""The official kubernetes Python client on RBAC (issue 16): the admin makes a Role and a RoleBinding
through the typed rbac API and reads them back into the typed model; alice (a client certificate)
is allowed what the binding grants and refused the rest with kube-apiserver's 403; the access reviews
answer through the typed authorization API. Exits non-zero with the failed check on stderr.
"""
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException

admin = config.new_client_from_config(config_file=sys.argv[1])
alice = config.new_client_from_config(config_file=sys.argv[2])
meta = client.V1ObjectMeta

rbac = client.RbacAuthorizationV1Api(admin)
rbac.create_namespaced_role("default", client.V1Role(
    metadata=meta(name="cm-reader"),
    rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])]))
rbac.create_namespaced_role_binding("default", client.V1RoleBinding(
    metadata=meta(name="alice-cm"),
    role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
    subjects=[client.RbacV1Subject(kind="User", name="alice", api_group="rbac.authorization.k8s.io")]))
binding = rbac.read_namespaced_role_binding("alice-cm", "default")
assert binding.role_ref.name == "cm-reader" and binding.subjects[0].name == "alice", binding
views = [r.metadata.name for r in rbac.list_cluster_role().items]
assert "view" in views and "cluster-admin" in views, views

core = client.CoreV1Api(alice)
core.list_namespaced_config_map("default")
try:
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=meta(name="x")))
    sys.exit("alice created a configmap")
except ApiException as e:
    assert e.status == 403, e
    message = json.loads(e.body)["message"]
    assert message == 'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "default"', message

authz = client.AuthorizationV1Api(alice)
def can(verb, resource):
    review = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
            namespace="default", verb=verb, resource=resource))))
    return review.status.allowed
assert can("list", "configmaps") and not can("delete", "configmaps")
rules = authz.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(
    spec=client.V1SelfSubjectRulesReviewSpec(namespace="default")))
assert any("configmaps" in (r.resources or []) for r in rules.status.resource_rules), rules.status
review = client.AuthorizationV1Api(admin).create_subject_access_review(client.V1SubjectAccessReview(
    spec=client.V1SubjectAccessReviewSpec(user="alice", resource_attributes=client.V1ResourceAttributes(
        namespace="default", verb="get", resource="configmaps"))))
assert review.status.allowed and "RoleBinding \"alice-cm/default\"" in review.status.reason, review.status
print("OK")
