import BerthJSON
import BerthKube
import Testing

/// Objects as kube-apiserver writes them (every non-omitempty field present, Go's zero values
/// included), so a decode and encode must give back the same JSON tree. Key order is not kept (the
/// tree is a dictionary; JSONWriter sorts keys), so the rule is equal trees, not equal bytes.
@Suite struct RoundTripTests {
    static func roundTrip<T: KubeJSONCodable>(_ type: T.Type, _ text: String) throws -> T {
        let bytes = Array(text.utf8)
        var unknown: [String] = []
        let value = try T(json: bytes, unknownFields: &unknown)
        #expect(unknown.isEmpty)
        let tree = try JSONParser.parse(bytes)
        let back = value.kubeJSON()
        #expect(back == tree, "\(Difference.first(tree, back) ?? "")")
        // And through the written text again.
        let again = try T(json: value.jsonBytes())
        #expect(again.kubeJSON() == tree)
        return value
    }

    @Test func aRunningPodRoundTrips() throws {
        let pod = try Self.roundTrip(CoreV1.Pod.self, Samples.pod)
        #expect(pod.metadata.name == "web-7d4b9c-x2x9k")
        #expect(pod.metadata.labels["app"] == "web")
        #expect(pod.spec.containers[0].ports[0].containerPort == 8080)
        #expect(pod.spec.containers[0].resources.requests["cpu"]?.milliValue == 250)
        #expect(pod.spec.containers[0].resources.limits["memory"]?.value == Int64(512) << 20)
        #expect(pod.status.phase == .running)
        #expect(pod.status.startTime == MetaV1.Time(rfc3339: "2026-12-04T01:00:05Z"))
        #expect(pod.spec.containers[0].livenessProbe?.httpGet?.port == .string("http"))
        #expect(pod.spec.volumes[0].volumeSource.configMap?.name == "web-config")
        #expect(pod.metadata.ownerReferences[0].controller == true)
    }

    @Test func aDeploymentRoundTrips() throws {
        let d = try Self.roundTrip(AppsV1.Deployment.self, Samples.deployment)
        #expect(d.spec.replicas == 3)
        #expect(d.spec.strategy.rollingUpdate?.maxSurge == .string("25%"))
        #expect(d.spec.strategy.rollingUpdate?.maxUnavailable == .int(0))
        #expect(d.spec.template.spec.containers.first?.image == "nginx:1.27")
    }

    @Test func aServiceRoundTrips() throws {
        let s = try Self.roundTrip(CoreV1.Service.self, Samples.service)
        #expect(s.spec.ports[0].targetPort == .int(8080))
        #expect(s.spec.ports[0].`protocol` == .tcp)
        #expect(s.spec.type == .clusterIP)
    }

    @Test func aNodeRoundTrips() throws {
        let n = try Self.roundTrip(CoreV1.Node.self, Samples.node)
        #expect(n.status.capacity["cpu"]?.milliValue == 4000)
        #expect(n.status.allocatable["memory"]?.value == Int64(7900) * 1024 * 1024)
        #expect(n.status.conditions.first { $0.type == .ready }?.status == .true)
        #expect(n.spec.taints[0].effect == .noSchedule)
    }

    @Test func anEndpointSliceRoundTrips() throws {
        let e = try Self.roundTrip(DiscoveryV1.EndpointSlice.self, Samples.endpointSlice)
        #expect(e.addressType == "IPv4")
        #expect(e.endpoints[0].conditions.ready == true)
        #expect(e.ports[0].port == 8080)
    }

    @Test func aLeaseRoundTripsWithMicroTimes() throws {
        let l = try Self.roundTrip(CoordinationV1.Lease.self, Samples.lease)
        #expect(l.spec.renewTime?.rfc3339 == "2026-12-04T01:56:08.123456Z")
        #expect(l.spec.leaseDurationSeconds == 40)
    }

    @Test func aMinimalObjectIsWrittenAsGoWritesIt() throws {
        // Go: a struct is always written, a zero Time is null, a non-omitempty int is 0.
        var pod = CoreV1.Pod()
        pod.metadata.name = "p"
        pod.spec.containers = [
            CoreV1.Container(name: "c", image: "busybox", ports: [CoreV1.ContainerPort(name: "http")])
        ]
        let text = String(decoding: pod.jsonBytes(), as: UTF8.self)
        #expect(
            text
                == #"{"metadata":{"creationTimestamp":null,"name":"p"},"spec":{"containers":[{"image":"busybox","name":"c","ports":[{"containerPort":0,"name":"http"}],"resources":{}}]},"status":{}}"#
        )
    }

    @Test func theTypeRegistryFindsKinds() {
        #expect(KubeTypes.type(apiVersion: "apps/v1", kind: "Deployment") == AppsV1.Deployment.self)
        #expect(KubeTypes.type(apiVersion: "v1", kind: "Pod") == CoreV1.Pod.self)
        #expect(KubeTypes.type(apiVersion: "v1", kind: "Nope") == nil)
        #expect(Pod.self == CoreV1.Pod.self)
    }

    @Test func codableGoesThroughTheSameJSONForm() throws {
        let pod = try CoreV1.Pod(json: Array(Samples.pod.utf8))
        let bytes = try JSONTreeEncoder.encode(pod)
        let back = try JSONTreeDecoder.decode(CoreV1.Pod.self, from: bytes)
        #expect(back == pod)
    }
}
