/// Every controller the control plane runs (one line each; order does not matter).
func controllerLoops(_ ctx: ControllerContext) -> [any ControlLoop] {
    var loops: [any ControlLoop] = []
    loops.append(ReplicaSetController(ctx))
    loops.append(ReplicationManager(ctx))
    loops.append(DeploymentController(ctx))
    loops.append(NodeLifecycleController(ctx))
    loops.append(NamespaceController(ctx))
    loops.append(GarbageCollector(ctx))
    loops.append(ServiceAccountController(ctx))
    loops.append(TokenController(ctx))
    loops.append(RootCAPublisher(ctx))
    loops.append(ClusterRoleAggregationController(ctx))
    loops.append(EndpointsController(ctx))
    loops.append(EndpointSliceController(ctx))
    loops.append(EndpointSliceMirroringController(ctx))
    loops.append(DaemonSetController(ctx))
    loops.append(StatefulSetController(ctx))
    loops.append(DisruptionController(ctx))
    loops.append(JobController(ctx))
    loops.append(CronJobController(ctx))
    loops.append(TTLAfterFinishedController(ctx))
    loops.append(ServiceLoadBalancerController(ctx))
    loops.append(ResourceQuotaController(ctx))
    loops.append(HorizontalPodAutoscalerController(ctx))
    loops.append(PersistentVolumeController(ctx))
    loops.append(EphemeralVolumeController(ctx))
    loops.append(CertificateSigningController(ctx))
    loops.append(CertificateApprovingController(ctx))
    loops.append(CertificateCleaner(ctx))
    if let ipam = NodeIPAMController(ctx) { loops.append(ipam) }
    return loops
}
