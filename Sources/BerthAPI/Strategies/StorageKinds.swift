/// storage.k8s.io/v1's kinds (upstream pkg/apis/storage/validation and v1's defaults): StorageClass,
/// CSIDriver, CSINode, CSIStorageCapacity and VolumeAttachment — stored, defaulted and checked as
/// kube-apiserver does, printed with kubectl's columns.

/// A class of volumes: who provisions them, with what parameters, and when they bind. The default class
/// is the one annotated `storageclass.kubernetes.io/is-default-class: "true"`.
struct StorageClassStrategy: ResourceStrategy {
    static let defaultClassAnnotations = [
        "storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class",
    ]

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["reclaimPolicy"].isNull { obj["reclaimPolicy"] = "Delete" }
        if obj["volumeBindingMode"].isNull { obj["volumeBindingMode"] = "Immediate" }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs = FieldChecks.qualifiedName(obj["provisioner"].string ?? "", "provisioner")
        if let provisioner = obj["provisioner"].string, provisioner.utf8.count > 63 {
            errs.append(.init("provisioner", "FieldValueTooLong", "Too long: may not be more than 63 bytes"))
        }
        let parameters = obj["parameters"].object ?? [:]
        let size = parameters.reduce(0) { $0 + $1.key.utf8.count + ($1.value.string?.utf8.count ?? 0) }
        if parameters.count > 512 {
            errs.append(
                .init("parameters", "FieldValueTooMany", "Too many: \(parameters.count): must have at most 512 items"))
        } else if size > 256 * 1024 {
            errs.append(.init("parameters", "FieldValueTooLong", "Too long: may not be more than 262144 bytes"))
        }
        for key in parameters.keys where key.isEmpty {
            errs.append(FieldChecks.invalid("parameters", .string(key), "field can not be empty."))
        }
        errs += FieldChecks.supported(obj["reclaimPolicy"], ["Delete", "Retain"], "reclaimPolicy")
        errs += FieldChecks.supported(
            obj["volumeBindingMode"], ["Immediate", "WaitForFirstConsumer"], "volumeBindingMode")
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if (obj["parameters"].object ?? [:]) != (old["parameters"].object ?? [:]) {
            errs.append(FieldChecks.forbidden("parameters", "updates to parameters are forbidden."))
        }
        if obj["provisioner"] != old["provisioner"] {
            errs.append(FieldChecks.forbidden("provisioner", "updates to provisioner are forbidden."))
        }
        if obj["reclaimPolicy"] != old["reclaimPolicy"] {
            errs.append(FieldChecks.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        }
        return errs + FieldChecks.immutable(obj["volumeBindingMode"], old["volumeBindingMode"], "volumeBindingMode")
    }

    /// k3s's `local-path` class: the default, provisioned by the local-path provisioner once a pod using
    /// the claim is scheduled (its volume is a directory on that pod's node), deleted with its claim.
    static let localPath: JSON = [
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": [
            "name": "local-path",
            "annotations": ["storageclass.kubernetes.io/is-default-class": "true"],
        ],
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    ]

    static func isDefault(_ obj: JSON) -> Bool {
        defaultClassAnnotations.contains { obj["metadata"]["annotations"][$0].string == "true" }
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Provisioner"), .init(name: "ReclaimPolicy"),
            .init(name: "VolumeBindingMode"), .init(name: "AllowVolumeExpansion"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let name = (obj["metadata"]["name"].string ?? "") + (Self.isDefault(obj) ? " (default)" : "")
        return [
            .string(name), .string(obj["provisioner"].string ?? ""), .string(obj["reclaimPolicy"].string ?? ""),
            .string(obj["volumeBindingMode"].string ?? ""), .string(String(obj["allowVolumeExpansion"].bool ?? false)),
            Tables.ageCell(obj),
        ]
    }
}

/// A CSI driver's registration: how Kubernetes talks to it (attach, pod info, fsGroup, token requests).
struct CSIDriverStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        let defaults: [(String, JSON)] = [
            ("attachRequired", true), ("podInfoOnMount", false), ("storageCapacity", false),
            ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", false), ("seLinuxMount", false),
        ]
        for (field, value) in defaults where obj["spec"][field].isNull { obj["spec"][field] = value }
        if (obj["spec"]["volumeLifecycleModes"].array ?? []).isEmpty {
            obj["spec"]["volumeLifecycleModes"] = ["Persistent"]
        }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let name = obj["metadata"]["name"].string ?? ""
        if name.utf8.count > 63 {
            errs.append(FieldChecks.invalid("metadata.name", .string(name), "must be no more than 63 characters"))
        }
        let spec = obj["spec"]
        errs += FieldChecks.supported(
            spec["fsGroupPolicy"], ["ReadWriteOnceWithFSType", "File", "None"], "spec.fsGroupPolicy")
        for (index, mode) in (spec["volumeLifecycleModes"].array ?? []).enumerated() {
            errs += FieldChecks.supported(mode, ["Persistent", "Ephemeral"], "spec.volumeLifecycleModes[\(index)]")
        }
        var audiences: Set<String> = []
        for (index, request) in (spec["tokenRequests"].array ?? []).enumerated() {
            let audience = request["audience"].string ?? ""
            if !audiences.insert(audience).inserted {
                errs.append(
                    .init(
                        "spec.tokenRequests[\(index)].audience", "FieldValueDuplicate",
                        "Duplicate value: \"\(audience)\""))
            }
            if let seconds = request["expirationSeconds"].int {
                if seconds < 600 {
                    errs.append(
                        FieldChecks.invalid(
                            "spec.tokenRequests[\(index)].expirationSeconds", .int(seconds),
                            "may not specify a duration less than 10 minutes"))
                } else if seconds > 1 << 32 {
                    errs.append(
                        FieldChecks.invalid(
                            "spec.tokenRequests[\(index)].expirationSeconds", .int(seconds),
                            "may not specify a duration larger than 2^32 seconds"))
                }
            }
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        ["attachRequired", "fsGroupPolicy", "volumeLifecycleModes"].flatMap {
            FieldChecks.immutable(obj["spec"][$0], old["spec"][$0], "spec.\($0)")
        }
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "AttachRequired"), .init(name: "PodInfoOnMount"),
            .init(name: "StorageCapacity"), .init(name: "TokenRequests"), .init(name: "RequiresRepublish"),
            .init(name: "Modes"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        let audiences = (spec["tokenRequests"].array ?? []).map { $0["audience"].string ?? "" }
        let modes = (spec["volumeLifecycleModes"].array ?? []).compactMap(\.string)
        func flag(_ field: String) -> JSON { .string(String(spec[field].bool ?? false)) }
        return [
            Tables.nameCell(obj), flag("attachRequired"), flag("podInfoOnMount"), flag("storageCapacity"),
            .string(audiences.isEmpty ? "<unset>" : audiences.joined(separator: ",")), flag("requiresRepublish"),
            .string(modes.joined(separator: ",")), Tables.ageCell(obj),
        ]
    }
}

/// The CSI drivers installed on a node (named as the Node), with each one's node ID and topology keys.
struct CSINodeStrategy: ResourceStrategy {
    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        var names: Set<String> = []
        for (index, driver) in (obj["spec"]["drivers"].array ?? []).enumerated() {
            let at = "spec.drivers[\(index)]"
            let name = driver["name"].string ?? ""
            errs += FieldChecks.qualifiedName(name, "\(at).name")
            if !name.isEmpty && !names.insert(name).inserted {
                errs.append(.init("\(at).name", "FieldValueDuplicate", "Duplicate value: \"\(name)\""))
            }
            let nodeID = driver["nodeID"].string ?? ""
            if nodeID.isEmpty {
                errs.append(FieldChecks.required("\(at).nodeID"))
            } else if nodeID.utf8.count > 192 {
                errs.append(FieldChecks.invalid("\(at).nodeID", .string(nodeID), "must be 192 characters or less"))
            }
            if let count = driver["allocatable"]["count"].int, count < 0 {
                errs.append(
                    FieldChecks.invalid("\(at).allocatable.count", .int(count), "must be greater than or equal to 0"))
            }
        }
        return errs
    }

    /// A driver's node ID and topology keys stay as registered; drivers may come and go.
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var before: [String: JSON] = [:]
        for driver in old["spec"]["drivers"].array ?? [] { before[driver["name"].string ?? ""] = driver }
        var errs: [APIError.Cause] = []
        for (index, driver) in (obj["spec"]["drivers"].array ?? []).enumerated() {
            guard let previous = before[driver["name"].string ?? ""] else { continue }
            for field in ["nodeID", "topologyKeys"] {
                errs += FieldChecks.immutable(driver[field], previous[field], "spec.drivers[\(index)].\(field)")
            }
        }
        return errs
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "Drivers", type: "integer"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .int(Int64((obj["spec"]["drivers"].array ?? []).count)), Tables.ageCell(obj)]
    }
}

/// How much a storage class can still provision in a topology segment (what a CSI driver publishes for
/// the scheduler).
struct CSIStorageCapacityStrategy: ResourceStrategy {
    func validate(_ obj: JSON) -> [APIError.Cause] {
        let className = obj["storageClassName"].string ?? ""
        var errs =
            className.isEmpty
            ? [FieldChecks.required("storageClassName")] : FieldChecks.dns1123Subdomain(className, "storageClassName")
        errs += FieldChecks.labelSelector(obj["nodeTopology"], "nodeTopology")
        errs += FieldChecks.nonNegativeQuantity(obj["capacity"], "capacity")
        errs += FieldChecks.nonNegativeQuantity(obj["maximumVolumeSize"], "maximumVolumeSize")
        return errs
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "StorageClassName"), .init(name: "Capacity"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        [
            Tables.nameCell(obj), .string(obj["storageClassName"].string ?? ""),
            .string(obj["capacity"].string ?? "<unset>"), Tables.ageCell(obj),
        ]
    }
}

/// A request to attach a volume to a node (the attach/detach controller's, for the CSI external
/// attacher). The spec is fixed once made; the status is the attacher's.
struct VolumeAttachmentStrategy: ResourceStrategy {
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = ["attached": false] }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs = FieldChecks.qualifiedName(spec["attacher"].string ?? "", "spec.attacher")
        let node = spec["nodeName"].string ?? ""
        errs +=
            node.isEmpty ? [FieldChecks.required("spec.nodeName")] : FieldChecks.dns1123Subdomain(node, "spec.nodeName")
        let source = spec["source"]
        let named = !(source["persistentVolumeName"].string ?? "").isEmpty, inline = !source["inlineVolumeSpec"].isNull
        if named == inline {
            errs.append(
                FieldChecks.invalid(
                    "spec.source", source, "must specify exactly one of inlineVolumeSpec and persistentVolumeName"))
        }
        return errs
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["spec"], old["spec"], "spec")
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Attacher"), .init(name: "PV"), .init(name: "Node"),
            .init(name: "Attached", type: "boolean"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        return [
            Tables.nameCell(obj), .string(spec["attacher"].string ?? ""),
            .string(spec["source"]["persistentVolumeName"].string ?? ""), .string(spec["nodeName"].string ?? ""),
            .bool(obj["status"]["attached"].bool ?? false), Tables.ageCell(obj),
        ]
    }
}
