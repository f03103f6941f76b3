import BerthCRIProtocol
import BerthKube

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A container's CreateContainer config (kuberuntime_container.go generateContainerConfig,
/// kuberuntime_container_linux.go, security_context.go) and Kubernetes' `$(VAR)` expansion.
extension PodConfigs {
    /// The kubelet's container annotations (kuberuntime/labels.go).
    static let restartCountAnnotation = "io.kubernetes.container.restartCount"
    static let terminationMessagePathAnnotation = "io.kubernetes.container.terminationMessagePath"
    static let terminationMessagePolicyAnnotation = "io.kubernetes.container.terminationMessagePolicy"
    static let terminationGracePeriodAnnotation = "io.kubernetes.pod.terminationGracePeriod"
    static let deletionGracePeriodAnnotation = "io.kubernetes.pod.deletionGracePeriod"

    /// Paths masked and made read-only in /proc and /sys unless procMount is Unmasked
    /// (securitycontext.ConvertToRuntimeMaskedPaths, kept in sync with moby's defaults).
    static let defaultMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    static let defaultReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// generateContainerConfig: `image` is the resolved reference the runtime pulled (the kubelet's
    /// imageRef), `environment` the container's variables (from `environment(_:pod:…)`), which
    /// `$(VAR)` in the command and arguments expand from; `mounts` its mounts. `machineMemory` is
    /// the node's memory in bytes (for the OOM score); `imageUID` and `imageUsername` the image's user
    /// (the runtime's ImageStatus), which becomes runAsUser when the pod sets none; `hugePageSizes` the
    /// host's page sizes (see ``linuxResources(_:pod:machineMemory:hugePageSizes:)``).
    static func containerConfig(
        _ container: CoreV1.Container, pod: CoreV1.Pod, restartCount: Int, image: String,
        environment: [Runtime_V1_KeyValue], mounts: [Runtime_V1_Mount], configuration: AgentConfiguration,
        machineMemory: Int64, imageUID: Int64? = nil, imageUsername: String = "", hugePageSizes: [String]? = nil
    ) -> Runtime_V1_ContainerConfig {
        var config = Runtime_V1_ContainerConfig()
        var metadata = Runtime_V1_ContainerMetadata()
        metadata.name = container.name
        metadata.attempt = UInt32(clamping: restartCount)
        config.metadata = metadata
        var imageSpec = Runtime_V1_ImageSpec()
        imageSpec.image = image
        imageSpec.userSpecifiedImage = container.image ?? ""
        config.image = imageSpec

        var variables: [String: String] = [:]
        for variable in environment { variables[variable.key] = String(decoding: variable.value, as: UTF8.self) }
        config.command = container.command.map { expand($0, env: variables) }
        config.args = container.args.map { expand($0, env: variables) }
        config.workingDir = container.workingDir ?? ""
        config.envs = environment
        config.mounts = mounts
        config.labels = containerLabels(container, pod: pod)
        config.annotations = containerAnnotations(container, pod: pod, restartCount: restartCount)
        config.logPath = "\(container.name)/\(restartCount).log"
        config.stdin = container.stdin ?? false
        config.stdinOnce = container.stdinOnce ?? false
        config.tty = container.tty ?? false

        var linux = Runtime_V1_LinuxContainerConfig()
        linux.resources = linuxResources(
            container, pod: pod, machineMemory: machineMemory, hugePageSizes: hugePageSizes)
        linux.securityContext = containerSecurityContext(
            container, pod: pod, configuration: configuration, imageUID: imageUID, imageUsername: imageUsername)
        config.linux = linux
        return config
    }

    /// newContainerLabels.
    static func containerLabels(_ container: CoreV1.Container, pod: CoreV1.Pod) -> [String: String] {
        [
            podNameLabel: pod.metadata.name ?? "", podNamespaceLabel: pod.metadata.namespace ?? "",
            podUIDLabel: pod.metadata.uid ?? "", containerNameLabel: container.name,
        ]
    }

    /// newContainerAnnotations, without the container hash (the kubelet's own hash of its Go struct)
    /// and the JSON of the preStop handler and ports. Unset termination fields take the API defaults.
    static func containerAnnotations(
        _ container: CoreV1.Container, pod: CoreV1.Pod, restartCount: Int
    ) -> [String: String] {
        var annotations = [
            restartCountAnnotation: String(restartCount),
            terminationMessagePathAnnotation: container.terminationMessagePath ?? "/dev/termination-log",
            terminationMessagePolicyAnnotation: container.terminationMessagePolicy?.rawValue ?? "File",
        ]
        if let seconds = pod.metadata.deletionGracePeriodSeconds {
            annotations[deletionGracePeriodAnnotation] = String(seconds)
        }
        if let seconds = pod.spec.terminationGracePeriodSeconds {
            annotations[terminationGracePeriodAnnotation] = String(seconds)
        }
        return annotations
    }

    /// determineEffectiveSecurityContext: the container's security context over the pod's (whose
    /// runAsUser, runAsGroup and SELinux options apply to every container), the image's user when neither
    /// sets one, the pod's namespaces, fsGroup and supplemental groups, noNewPrivs when
    /// allowPrivilegeEscalation is false, the default masked and read-only paths unless procMount is
    /// Unmasked (a privileged container's runtime ignores them), seccomp from the container else the pod
    /// else Unconfined (the kubelet's default without --seccomp-default), and AppArmor.
    static func containerSecurityContext(
        _ container: CoreV1.Container, pod: CoreV1.Pod, configuration: AgentConfiguration,
        imageUID: Int64? = nil, imageUsername: String = ""
    ) -> Runtime_V1_LinuxContainerSecurityContext {
        let podContext = pod.spec.securityContext
        let context = container.securityContext
        var security = Runtime_V1_LinuxContainerSecurityContext()
        if let capabilities = context?.capabilities {
            var capability = Runtime_V1_Capability()
            capability.addCapabilities = capabilities.add
            capability.dropCapabilities = capabilities.drop
            security.capabilities = capability
        }
        if let options = context?.seLinuxOptions ?? podContext?.seLinuxOptions {
            security.selinuxOptions = seLinuxOption(options)
        }
        if let user = context?.runAsUser ?? podContext?.runAsUser {
            security.runAsUser.value = user
        } else {
            if let imageUID { security.runAsUser.value = imageUID }
            security.runAsUsername = imageUsername
        }
        if let group = context?.runAsGroup ?? podContext?.runAsGroup { security.runAsGroup.value = group }
        security.privileged = context?.privileged ?? false
        security.readonlyRootfs = context?.readOnlyRootFilesystem ?? false
        security.seccomp = seccompProfile(
            context?.seccompProfile ?? podContext?.seccompProfile,
            root: configuration.rootDirectory + "/seccomp")
        if let (profile, deprecatedName) = appArmorProfile(container, pod: pod) {
            security.apparmor = profile
            security.apparmorProfile = deprecatedName
        }
        security.namespaceOptions = namespaceOptions(pod)
        if let podContext {
            if let fsGroup = podContext.fsGroup { security.supplementalGroups.append(fsGroup) }
            security.supplementalGroups += podContext.supplementalGroups
            if let policy = supplementalGroupsPolicy(podContext) { security.supplementalGroupsPolicy = policy }
        }
        security.noNewPrivs = context?.allowPrivilegeEscalation.map { !$0 } ?? false
        let unmasked = context?.procMount == .unmaskedProcMount
        security.maskedPaths = unmasked ? [] : defaultMaskedPaths
        security.readonlyPaths = unmasked ? [] : defaultReadonlyPaths
        return security
    }

    /// fieldSeccompProfile: Localhost profiles are files under the agent's seccomp directory (the
    /// kubelet's `<root-dir>/seccomp`); no profile is Unconfined.
    static func seccompProfile(_ profile: CoreV1.SeccompProfile?, root: String) -> Runtime_V1_SecurityProfile {
        var result = Runtime_V1_SecurityProfile()
        switch profile?.type.rawValue {
        case "RuntimeDefault": result.profileType = .runtimeDefault
        case "Localhost":
            result.profileType = .localhost
            if let name = profile?.localhostProfile, !name.isEmpty { result.localhostRef = root + "/" + name }
        default: result.profileType = .unconfined
        }
        return result
    }

    /// getAppArmorProfile: the container's profile, else the deprecated
    /// `container.apparmor.security.beta.kubernetes.io/<name>` annotation, else the pod's; with the
    /// deprecated name (`runtime/default`, `unconfined`, `localhost/<name>`) for older runtimes.
    static func appArmorProfile(
        _ container: CoreV1.Container, pod: CoreV1.Pod
    ) -> (Runtime_V1_SecurityProfile, String)? {
        var chosen = container.securityContext?.appArmorProfile
        if chosen == nil,
            let value = pod.metadata.annotations["container.apparmor.security.beta.kubernetes.io/" + container.name]
        {
            if value == "runtime/default" {
                chosen = CoreV1.AppArmorProfile(type: .runtimeDefault)
            } else if value == "unconfined" {
                chosen = CoreV1.AppArmorProfile(type: .unconfined)
            } else if value.hasPrefix("localhost/") {
                chosen = CoreV1.AppArmorProfile(type: .localhost, localhostProfile: String(value.dropFirst(10)))
            }
        }
        guard let profile = chosen ?? pod.spec.securityContext?.appArmorProfile else { return nil }
        var result = Runtime_V1_SecurityProfile()
        switch profile.type {
        case .runtimeDefault:
            result.profileType = .runtimeDefault
            return (result, "runtime/default")
        case .unconfined:
            result.profileType = .unconfined
            return (result, "unconfined")
        case .localhost:
            result.profileType = .localhost
            result.localhostRef = profile.localhostProfile ?? ""
            return (result, "localhost/" + result.localhostRef)
        default: return nil
        }
    }

    /// Kubernetes' variable expansion (third_party/forked/golang/expansion): `$(VAR)` becomes VAR's
    /// value when it is defined and stays as written when not; `$$` is `$`, so `$$(VAR)` is the literal
    /// `$(VAR)`; any other `$` (an unclosed `$(`, a trailing `$`) stays.
    static func expand(_ text: String, env: [String: String]) -> String {
        expand(text) { env[$0] }
    }

    static func expand(_ text: String, lookup: (String) -> String?) -> String {
        let input = Array(text.utf8)
        guard input.contains(UInt8(ascii: "$")) else { return text }
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var checkpoint = 0
        var cursor = 0
        while cursor < input.count {
            if input[cursor] == UInt8(ascii: "$") && cursor + 1 < input.count {
                output += input[checkpoint..<cursor]
                let next = cursor + 1
                switch input[next] {
                case UInt8(ascii: "$"):
                    // An escaped operator.
                    output.append(UInt8(ascii: "$"))
                    cursor = next
                case UInt8(ascii: "("):
                    if let close = input[(next + 1)...].firstIndex(of: UInt8(ascii: ")")) {
                        let name = String(decoding: input[(next + 1)..<close], as: UTF8.self)
                        output += Array((lookup(name) ?? "$(\(name))").utf8)
                        cursor = close
                    } else {
                        // An unclosed reference stays as written.
                        output += Array("$(".utf8)
                        cursor = next
                    }
                default:
                    // Not a reference: the operator and the byte after it.
                    output += [UInt8(ascii: "$"), input[next]]
                    cursor = next
                }
                checkpoint = cursor + 1
            }
            cursor += 1
        }
        output += input[min(checkpoint, input.count)...]
        return String(decoding: output, as: UTF8.self)
    }

    /// A CRI environment variable.
    static func keyValue(_ key: String, _ value: String) -> Runtime_V1_KeyValue {
        var pair = Runtime_V1_KeyValue()
        pair.key = key
        pair.value = Data(value.utf8)
        return pair
    }
}

extension PodConfigs {
    /// The kubelet's verifyRunAsNonRoot: with runAsNonRoot (the container's, else the pod's), the user
    /// must be provably not root — runAsUser not 0, or the image's numeric user not 0; an image with no
    /// user runs as root, one with a user name cannot be checked. The messages are the kubelet's.
    static func verifyRunAsNonRoot(
        _ container: CoreV1.Container, pod: CoreV1.Pod, imageUID: Int64?, imageUsername: String
    ) throws(PodConfigError) {
        let podContext = pod.spec.securityContext
        let context = container.securityContext
        guard context?.runAsNonRoot ?? podContext?.runAsNonRoot ?? false else { return }
        let described = "\(pod.metadata.name ?? "")_\(pod.metadata.namespace ?? "")(\(pod.metadata.uid ?? ""))"
        if let user = context?.runAsUser ?? podContext?.runAsUser {
            if user == 0 {
                throw PodConfigError(
                    "container's runAsUser breaks non-root policy (pod: \"\(described)\", container: \(container.name))"
                )
            }
            return
        }
        if imageUID == nil && !imageUsername.isEmpty {
            throw PodConfigError(
                "container has runAsNonRoot and image has non-numeric user (\(imageUsername)), cannot verify user is non-root (pod: \"\(described)\", container: \(container.name))"
            )
        }
        if (imageUID ?? 0) == 0 {
            throw PodConfigError(
                "container has runAsNonRoot and image will run as root (pod: \"\(described)\", container: \(container.name))"
            )
        }
    }
}
