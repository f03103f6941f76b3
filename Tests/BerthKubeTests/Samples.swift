/// Realistic objects, written for these tests in the form kube-apiserver returns them.
enum Samples {
    static let pod = #"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c-x2x9k","generateName":"web-7d4b9c-","namespace":"default",
         "uid":"0b9e0c7e-6a1e-4d8a-9a53-3f1f4c7f1a11","resourceVersion":"48213","creationTimestamp":"2026-12-04T01:00:00Z",
         "labels":{"app":"web","pod-template-hash":"7d4b9c"},"annotations":{"berth.dev/note":"x"},
         "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c","uid":"6c1c9f2e-1111-4a4a-8888-123456789abc","controller":true,"blockOwnerDeletion":true}],
         "managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-12-04T01:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}}]},
         "spec":{"volumes":[{"name":"config","configMap":{"name":"web-config","defaultMode":420}},
           {"name":"kube-api-access-abcde","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
             {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
             {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}}],
          "containers":[{"name":"web","image":"nginx:1.27","args":["--port","8080"],
            "ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],
            "env":[{"name":"MODE","value":"prod"},{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}}],
            "resources":{"limits":{"memory":"512Mi"},"requests":{"cpu":"250m","memory":"256Mi"}},
            "volumeMounts":[{"name":"config","readOnly":true,"mountPath":"/etc/web"},{"name":"kube-api-access-abcde","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],
            "livenessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},"initialDelaySeconds":5,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},
            "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent",
            "securityContext":{"runAsNonRoot":true,"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}],
          "restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default",
          "serviceAccount":"default","nodeName":"node-1","securityContext":{"fsGroup":2000},"schedulerName":"default-scheduler",
          "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],
          "priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},
         "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-12-04T01:00:09Z"},
           {"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-12-04T01:00:00Z"}],
          "hostIP":"10.0.0.11","hostIPs":[{"ip":"10.0.0.11"}],"podIP":"10.244.1.7","podIPs":[{"ip":"10.244.1.7"}],"startTime":"2026-12-04T01:00:05Z",
          "containerStatuses":[{"name":"web","state":{"running":{"startedAt":"2026-12-04T01:00:08Z"}},"lastState":{},"ready":true,"restartCount":0,
            "image":"docker.io/library/nginx:1.27","imageID":"docker.io/library/nginx@sha256:0123","containerID":"containerd://abc","started":true}],
          "qosClass":"Burstable"}}
        """#

    static let deployment = #"""
        {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","uid":"u-1","resourceVersion":"9","generation":2,
         "creationTimestamp":"2026-12-04T00:59:00Z","labels":{"app":"web"},"annotations":{"deployment.kubernetes.io/revision":"1"}},
         "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
          "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log",
              "terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,
              "dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},
          "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":0,"maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},
         "status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3,
          "conditions":[{"type":"Available","status":"True","lastUpdateTime":"2026-12-04T01:00:10Z","lastTransitionTime":"2026-12-04T01:00:10Z",
            "reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."}]}}
        """#

    static let service = #"""
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default","uid":"u-2","resourceVersion":"11","creationTimestamp":"2026-12-04T00:59:00Z"},
         "spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"web"},"clusterIP":"10.96.0.20",
          "clusterIPs":["10.96.0.20"],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack",
          "internalTrafficPolicy":"Cluster"},
         "status":{"loadBalancer":{}}}
        """#

    static let node = #"""
        {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","uid":"u-3","resourceVersion":"77","creationTimestamp":"2026-12-01T00:00:00Z",
         "labels":{"kubernetes.io/hostname":"node-1","kubernetes.io/os":"linux"},"annotations":{"node.alpha.kubernetes.io/ttl":"0"}},
         "spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"],"taints":[{"key":"dedicated","value":"web","effect":"NoSchedule"}]},
         "status":{"capacity":{"cpu":"4","ephemeral-storage":"100Gi","memory":"8G","pods":"110"},
          "allocatable":{"cpu":"3800m","ephemeral-storage":"95Gi","memory":"7900Mi","pods":"110"},
          "conditions":[{"type":"MemoryPressure","status":"False","lastHeartbeatTime":"2026-12-04T01:55:00Z","lastTransitionTime":"2026-12-01T00:00:10Z",
            "reason":"KubeletHasSufficientMemory","message":"kubelet has sufficient memory available"},
           {"type":"Ready","status":"True","lastHeartbeatTime":"2026-12-04T01:55:00Z","lastTransitionTime":"2026-12-01T00:00:20Z","reason":"KubeletReady",
            "message":"kubelet is posting ready status"}],
          "addresses":[{"type":"InternalIP","address":"10.0.0.11"},{"type":"Hostname","address":"node-1"}],
          "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}},
          "nodeInfo":{"machineID":"m","systemUUID":"s","bootID":"b","kernelVersion":"6.1.0","osImage":"Debian GNU/Linux 12","containerRuntimeVersion":"berth://0.1",
            "kubeletVersion":"v1.32.9","kubeProxyVersion":"v1.32.9","operatingSystem":"linux","architecture":"amd64"},
          "images":[{"names":["docker.io/library/nginx@sha256:0123","docker.io/library/nginx:1.27"],"sizeBytes":72000000}]}}
        """#

    static let endpointSlice = #"""
        {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-abcde","generateName":"web-","namespace":"default",
         "uid":"u-4","resourceVersion":"12","creationTimestamp":"2026-12-04T00:59:01Z","labels":{"kubernetes.io/service-name":"web",
         "endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},
         "addressType":"IPv4",
         "endpoints":[{"addresses":["10.244.1.7"],"conditions":{"ready":true,"serving":true,"terminating":false},
           "targetRef":{"kind":"Pod","namespace":"default","name":"web-7d4b9c-x2x9k","uid":"0b9e0c7e-6a1e-4d8a-9a53-3f1f4c7f1a11"},"nodeName":"node-1"}],
         "ports":[{"name":"http","protocol":"TCP","port":8080}]}
        """#

    static let lease = #"""
        {"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"node-1","namespace":"kube-node-lease","uid":"u-5",
         "resourceVersion":"900","creationTimestamp":"2026-12-01T00:00:00Z",
         "ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"node-1","uid":"u-3"}]},
         "spec":{"holderIdentity":"node-1","leaseDurationSeconds":40,"renewTime":"2026-12-04T01:56:08.123456Z"}}
        """#
}
