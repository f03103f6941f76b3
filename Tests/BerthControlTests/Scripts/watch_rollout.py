"""Watches a Deployment with the official kubernetes client until its rollout is complete.

Prints one line per observed change ("gen=… observed=… updated=… available=…") and "complete" at the
end; exits 1 if the watch ends (timeout) first. Arguments: kubeconfig namespace name timeout-seconds.
"""
import sys
from kubernetes import client, config, watch

kubeconfig, namespace, name, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
config.load_kube_config(config_file=kubeconfig)
apps = client.AppsV1Api()
w = watch.Watch()
for event in w.stream(apps.list_namespaced_deployment, namespace, field_selector=f"metadata.name={name}",
                      timeout_seconds=timeout):
    d = event["object"]
    s = d.status
    print(f"{event['type']} gen={d.metadata.generation} observed={s.observed_generation} "
          f"updated={s.updated_replicas} available={s.available_replicas} replicas={s.replicas}", flush=True)
    want = d.spec.replicas
    done = (s.observed_generation or 0) >= d.metadata.generation and (s.updated_replicas or 0) == want \
        and (s.available_replicas or 0) == want and (s.replicas or 0) == want
    if done and d.spec.template.spec.containers[0].image == sys.argv[5]:
        print("complete", flush=True)
        w.stop()
        sys.exit(0)
sys.exit(1)
