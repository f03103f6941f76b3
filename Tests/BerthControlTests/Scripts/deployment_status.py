"""Updates a Deployment and its status the way client-go based tools do, with the official client.

kube-apiserver's Deployment strategy allows unconditional updates (no resourceVersion: no
precondition, retried internally) and moves metadata.generation only when the defaulted spec
changes. Checks, printing "ok" at the end and exiting 1 with the reason on the first failure:
  1. the same spec PUT twice (without the server's defaults, as a typed client sends it) moves
     generation at most once;
  2. several clients PUTting /status without a resourceVersion at the same time all succeed;
  3. GET + PUT /status with the resourceVersion (retried on conflict) and a merge PATCH of /status
     are both visible to the next read.
Arguments: kubeconfig namespace.
"""
import sys
import time

from concurrently import run_concurrently
from kubernetes import client, config
from kubernetes.client.rest import ApiException

kubeconfig, ns = sys.argv[1], sys.argv[2]
config.load_kube_config(config_file=kubeconfig)
apps = client.AppsV1Api()
name = "status-deploy"
labels = {"app": name}


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def typed(image):
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=dict(labels)),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=dict(labels)),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=dict(labels)),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image=image)]))))


def wait_until(pred, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        d = apps.read_namespaced_deployment(name, ns)
        d.status = d.status or client.V1DeploymentStatus()
        if pred(d):
            return d
        time.sleep(0.1)
    fail("timed out waiting for " + what)


apps.create_namespaced_deployment(ns, typed("registry.local/a:1"))
wait_until(lambda d: (d.status.available_replicas or 0) == 2, "2 available replicas")

# 1. An identical unconditional PUT does not move generation.
first = apps.replace_namespaced_deployment(name, ns, typed("registry.local/a:2"))
second = apps.replace_namespaced_deployment(name, ns, typed("registry.local/a:2"))
if second.metadata.generation != first.metadata.generation:
    fail(f"generation moved from {first.metadata.generation} to {second.metadata.generation} on an identical PUT")
print(f"identical PUT kept generation {second.metadata.generation}", flush=True)

# 2. Concurrent status PUTs without resourceVersion, while the rollout to a:2 is under way.
errors = []


def writer(i):
    for j in range(15):
        d = apps.read_namespaced_deployment(name, ns)
        d.metadata.resource_version = None
        d.status = d.status or client.V1DeploymentStatus()
        d.status.conditions = [c for c in (d.status.conditions or []) if c.type != f"Writer{i}"] + [
            client.V1DeploymentCondition(type=f"Writer{i}", status="True", reason="Test", message=str(j))]
        try:
            apps.replace_namespaced_deployment_status(name, ns, d)
        except ApiException as e:
            errors.append(f"writer {i} update {j}: {e.status} {e.reason}")
            return


run_concurrently(writer, 3)
if errors:
    fail("unconditional status updates were refused: " + "; ".join(errors))
print("45 unconditional status updates accepted", flush=True)

# 3. The e2e status flow: GET, append a condition, PUT /status (retry on conflict); then PATCH /status.
for attempt in range(5):
    d = apps.read_namespaced_deployment(name, ns)
    d.status.conditions = (d.status.conditions or []) + [
        client.V1DeploymentCondition(type="StatusUpdate", status="True", reason="E2E", message="Set from e2e test")]
    try:
        apps.replace_namespaced_deployment_status(name, ns, d)
        break
    except ApiException as e:
        if e.status != 409 or attempt == 4:
            fail(f"status update: {e.status} {e.reason}")
wait_until(lambda d: any(c.type == "StatusUpdate" and c.message == "Set from e2e test" for c in d.status.conditions or []),
           "the StatusUpdate condition")
apps.patch_namespaced_deployment_status(name, ns, {"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}})
wait_until(lambda d: any(c.type == "StatusPatched" for c in d.status.conditions or []), "the StatusPatched condition")
d = wait_until(lambda d: (d.status.observed_generation or 0) >= d.metadata.generation
               and (d.status.updated_replicas or 0) == 2 and (d.status.available_replicas or 0) == 2,
               "the rollout to a:2 to complete")
print(f"ok generation={d.metadata.generation} observed={d.status.observed_generation}", flush=True)
