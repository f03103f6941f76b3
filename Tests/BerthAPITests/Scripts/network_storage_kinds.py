"""The official kubernetes Python client on the networking.k8s.io, storage.k8s.io and node.k8s.io kinds
(issue 16): each created through its typed API and read back into its typed model, which fails on a
field of the wrong shape. Exits non-zero with the failed check on stderr.
"""
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
net = client.NetworkingV1Api()
storage = client.StorageV1Api()
node = client.NodeV1Api()
meta = client.V1ObjectMeta

net.create_ingress_class(client.V1IngressClass(
    metadata=meta(name="traefik", annotations={"ingressclass.kubernetes.io/is-default-class": "true"}),
    spec=client.V1IngressClassSpec(controller="traefik.io/ingress-controller")))
backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(
    name="web", port=client.V1ServiceBackendPort(number=80)))
net.create_namespaced_ingress("default", client.V1Ingress(
    metadata=meta(name="web"),
    spec=client.V1IngressSpec(rules=[client.V1IngressRule(host="web.example.com", http=client.V1HTTPIngressRuleValue(
        paths=[client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]))])))
ingress = net.read_namespaced_ingress("web", "default")
assert ingress.spec.ingress_class_name == "traefik", ingress.spec
assert ingress.spec.rules[0].http.paths[0].backend.service.port.number == 80

net.create_namespaced_network_policy("default", client.V1NetworkPolicy(
    metadata=meta(name="deny-all"), spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector())))
policy = net.read_namespaced_network_policy("deny-all", "default")
assert policy.spec.policy_types == ["Ingress"], policy.spec
try:
    net.create_namespaced_network_policy("default", client.V1NetworkPolicy(
        metadata=meta(name="bad"), spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(),
            ingress=[client.V1NetworkPolicyIngressRule(_from=[client.V1NetworkPolicyPeer(
                ip_block=client.V1IPBlock(cidr="10.0.0.0/33"))])])))
    raise AssertionError("a /33 was accepted")
except ApiException as e:
    assert e.status == 422 and "spec.ingress[0].from[0].ipBlock.cidr" in str(e.body), e.body

storage.create_storage_class(client.V1StorageClass(
    metadata=meta(name="fast"), provisioner="example.com/fast", volume_binding_mode="WaitForFirstConsumer"))
fast = storage.read_storage_class("fast")
assert (fast.reclaim_policy, fast.volume_binding_mode) == ("Delete", "WaitForFirstConsumer"), fast
storage.create_csi_driver(client.V1CSIDriver(metadata=meta(name="fast.example.com"), spec=client.V1CSIDriverSpec()))
assert storage.read_csi_driver("fast.example.com").spec.attach_required is True
storage.create_volume_attachment(client.V1VolumeAttachment(
    metadata=meta(name="va"), spec=client.V1VolumeAttachmentSpec(
        attacher="fast.example.com", node_name="n1",
        source=client.V1VolumeAttachmentSource(persistent_volume_name="pv"))))
assert storage.read_volume_attachment("va").status.attached is False

node.create_runtime_class(client.V1RuntimeClass(metadata=meta(name="runc"), handler="runc"))
assert [c.handler for c in node.list_runtime_class().items] == ["runc"]
print("OK")
