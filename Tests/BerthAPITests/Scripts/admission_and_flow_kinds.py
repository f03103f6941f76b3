"""The official kubernetes Python client on admissionregistration.k8s.io/v1 and
flowcontrol.apiserver.k8s.io/v1 (issue 16): each kind created through its typed API and read back into
its typed model (which fails on a field of the wrong shape), a policy that refuses a write, and the
priority-and-fairness headers on a response. Exits non-zero with the failed check on stderr.
"""
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
admission = client.AdmissionregistrationV1Api()
flow = client.FlowcontrolApiserverV1Api()
core = client.CoreV1Api()
meta = client.V1ObjectMeta

# A webhook configuration with upstream's defaults filled in on the way back.
admission.create_validating_webhook_configuration(client.V1ValidatingWebhookConfiguration(
    metadata=meta(name="python.berth.test"),
    webhooks=[client.V1ValidatingWebhook(
        name="python.berth.test", side_effects="None", admission_review_versions=["v1"],
        client_config=client.AdmissionregistrationV1WebhookClientConfig(url="https://127.0.0.1:1/never"),
        rules=[client.V1RuleWithOperations(
            api_groups=["example.com"], api_versions=["v1"], operations=["CREATE"], resources=["things"])])]))
hook = admission.read_validating_webhook_configuration("python.berth.test").webhooks[0]
assert (hook.failure_policy, hook.match_policy, hook.timeout_seconds, hook.rules[0].scope) == \
    ("Fail", "Equivalent", 10, "*"), hook
assert hook.namespace_selector is not None and hook.object_selector is not None, hook
admission.create_mutating_webhook_configuration(client.V1MutatingWebhookConfiguration(
    metadata=meta(name="mutate.python.berth.test"),
    webhooks=[client.V1MutatingWebhook(
        name="mutate.python.berth.test", side_effects="NoneOnDryRun", admission_review_versions=["v1"],
        client_config=client.AdmissionregistrationV1WebhookClientConfig(
            service=client.AdmissionregistrationV1ServiceReference(namespace="default", name="hooks")))]))
mutating = admission.read_mutating_webhook_configuration("mutate.python.berth.test").webhooks[0]
assert mutating.reinvocation_policy == "Never" and mutating.client_config.service.port == 443, mutating

# A policy with a binding: a ConfigMap named "forbidden-*" is refused with the policy's message.
admission.create_validating_admission_policy(client.V1ValidatingAdmissionPolicy(
    metadata=meta(name="names.python.berth.test"),
    spec=client.V1ValidatingAdmissionPolicySpec(
        match_constraints=client.V1MatchResources(resource_rules=[client.V1NamedRuleWithOperations(
            api_groups=[""], api_versions=["v1"], operations=["CREATE"], resources=["configmaps"])]),
        validations=[client.V1Validation(
            expression="!object.metadata.name.startsWith('forbidden-')", message="that name is forbidden")])))
admission.create_validating_admission_policy_binding(client.V1ValidatingAdmissionPolicyBinding(
    metadata=meta(name="names"),
    spec=client.V1ValidatingAdmissionPolicyBindingSpec(
        policy_name="names.python.berth.test", validation_actions=["Deny"])))
policy = admission.read_validating_admission_policy("names.python.berth.test")
assert policy.spec.failure_policy == "Fail" and policy.spec.match_constraints.match_policy == "Equivalent", policy
try:
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=meta(name="forbidden-one")))
    raise AssertionError("the policy let a forbidden name through")
except ApiException as e:
    assert e.status == 422 and "that name is forbidden" in str(e.body), e.body
core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=meta(name="allowed-one")))

# Flow control: the bootstrap configuration read into the typed models, one of our own made.
levels = {p.metadata.name: p for p in flow.list_priority_level_configuration().items}
assert levels["workload-low"].spec.limited.nominal_concurrency_shares == 100, levels["workload-low"]
assert levels["exempt"].spec.type == "Exempt", levels["exempt"]
schemas = {s.metadata.name: s for s in flow.list_flow_schema().items}
assert schemas["catch-all"].spec.matching_precedence == 10000, schemas["catch-all"]
flow.create_priority_level_configuration(client.V1PriorityLevelConfiguration(
    metadata=meta(name="python-level"),
    spec=client.V1PriorityLevelConfigurationSpec(type="Limited", limited=client.V1LimitedPriorityLevelConfiguration(
        limit_response=client.V1LimitResponse(type="Queue")))))
level = flow.read_priority_level_configuration("python-level").spec.limited
assert (level.nominal_concurrency_shares, level.limit_response.queuing.queues,
        level.limit_response.queuing.hand_size) == (30, 64, 8), level
_, status, headers = core.list_namespace_with_http_info()
assert status == 200 and "X-Kubernetes-PF-FlowSchema-UID" in headers, headers
print("OK")
