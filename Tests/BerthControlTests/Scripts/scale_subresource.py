"""Scales a ReplicaSet and a Deployment through their scale subresource with the official client.

A Scale without a resourceVersion is an unconditional update upstream (kubernetes' e2e clears it
before UpdateScale), so several clients scaling at once all succeed, and the set reaches the last
size asked. Prints "ok" at the end; exits 1 with the reason on the first failure.
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


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def template(app):
    return client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": app}),
                                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="registry.local/s:1")]))


apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
    metadata=client.V1ObjectMeta(name="scaled-rs"),
    spec=client.V1ReplicaSetSpec(replicas=1, selector=client.V1LabelSelector(match_labels={"app": "scaled-rs"}),
                                 template=template("scaled-rs"))))
apps.create_namespaced_deployment(ns, client.V1Deployment(
    metadata=client.V1ObjectMeta(name="scaled-deploy"),
    spec=client.V1DeploymentSpec(replicas=1, selector=client.V1LabelSelector(match_labels={"app": "scaled-deploy"}),
                                 template=template("scaled-deploy"))))

errors = []


def scaler(i):
    for j in range(12):
        n = (i + j) % 5
        try:
            if j % 2:
                apps.patch_namespaced_replica_set_scale("scaled-rs", ns, {"spec": {"replicas": n}})
            else:
                apps.replace_namespaced_replica_set_scale("scaled-rs", ns, client.V1Scale(
                    metadata=client.V1ObjectMeta(name="scaled-rs", namespace=ns), spec=client.V1ScaleSpec(replicas=n)))
        except ApiException as e:
            errors.append(f"scaler {i} call {j}: {e.status} {e.reason}")
            return


run_concurrently(scaler, 4)
if errors:
    fail("unconditional scale updates were refused: " + "; ".join(errors))


def reached(kind, read, read_scale, want, selector):
    end = time.time() + 30
    while time.time() < end:
        o = read()
        s = o.status or client.V1ReplicaSetStatus(replicas=0)
        if o.spec.replicas == want and (s.replicas or 0) == want and (s.ready_replicas or 0) == want \
                and (s.available_replicas or 0) == want and (s.observed_generation or 0) >= o.metadata.generation:
            sc = read_scale()
            if sc.spec.replicas != want or sc.status.replicas != want or sc.status.selector != selector:
                fail(f"{kind} Scale says spec={sc.spec.replicas} status={sc.status.replicas} selector={sc.status.selector!r}")
            return
        time.sleep(0.1)
    fail(f"{kind} did not reach {want} replicas: spec={o.spec.replicas} status={s}")


r = apps.replace_namespaced_replica_set_scale("scaled-rs", ns, client.V1Scale(
    metadata=client.V1ObjectMeta(name="scaled-rs", namespace=ns), spec=client.V1ScaleSpec(replicas=4)))
if r.spec.replicas != 4:
    fail(f"replace returned spec.replicas={r.spec.replicas}")
reached("ReplicaSet", lambda: apps.read_namespaced_replica_set("scaled-rs", ns),
        lambda: apps.read_namespaced_replica_set_scale("scaled-rs", ns), 4, "app=scaled-rs")
apps.patch_namespaced_replica_set_scale("scaled-rs", ns, {"spec": {"replicas": 2}})
reached("ReplicaSet", lambda: apps.read_namespaced_replica_set("scaled-rs", ns),
        lambda: apps.read_namespaced_replica_set_scale("scaled-rs", ns), 2, "app=scaled-rs")

apps.replace_namespaced_deployment_scale("scaled-deploy", ns, client.V1Scale(
    metadata=client.V1ObjectMeta(name="scaled-deploy", namespace=ns), spec=client.V1ScaleSpec(replicas=3)))
reached("Deployment", lambda: apps.read_namespaced_deployment("scaled-deploy", ns),
        lambda: apps.read_namespaced_deployment_scale("scaled-deploy", ns), 3, "app=scaled-deploy")
apps.patch_namespaced_deployment_scale("scaled-deploy", ns, {"spec": {"replicas": 1}})
reached("Deployment", lambda: apps.read_namespaced_deployment("scaled-deploy", ns),
        lambda: apps.read_namespaced_deployment_scale("scaled-deploy", ns), 1, "app=scaled-deploy")
print("ok", flush=True)
