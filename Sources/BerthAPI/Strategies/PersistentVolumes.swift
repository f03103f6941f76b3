import BerthKube

/// core/v1 PersistentVolumeClaim and PersistentVolume (upstream pkg/registry/core/persistentvolumeclaim
/// and persistentvolume, ValidatePersistentVolumeClaim and ValidatePersistentVolume as of 1.32): stored,
/// defaulted and checked as kube-apiserver does, printed with kubectl's columns, with the admission
/// kube-apiserver runs on them by default (DefaultStorageClass, StorageObjectInUseProtection). The
/// control plane's persistent volume controller binds claims to volumes.
enum PersistentVolumeRules {
    /// StorageObjectInUseProtection's finalizers: the persistent volume controller removes them once no
    /// pod uses the claim, and once the volume is no longer bound.
    static let claimProtection = "kubernetes.io/pvc-protection"
    static let volumeProtection = "kubernetes.io/pv-protection"

    /// Adds `finalizer` to the object unless it is there.
    static func protect(_ obj: inout JSON, with finalizer: String) {
        var finalizers = obj["metadata"]["finalizers"].array ?? []
        if !finalizers.contains(.string(finalizer)) { finalizers.append(.string(finalizer)) }
        obj["metadata"]["finalizers"] = .array(finalizers)
    }

    static let accessModes = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
    static let volumeModes = ["Block", "Filesystem"]

    /// spec.volumeMode and spec.storageClassName, which claims and volumes check alike.
    static func validateModeAndClass(_ spec: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        if let mode = spec["volumeMode"].string {
            errs += FieldChecks.supported(.string(mode), volumeModes, "spec.volumeMode")
        }
        if let cls = spec["storageClassName"].string, !cls.isEmpty {
            errs += FieldChecks.dns1123Subdomain(cls, "spec.storageClassName")
        }
        return errs
    }

    /// The access modes, as kubectl's GetAccessModesAsString abbreviates them (in its fixed order).
    static func accessModesText(_ modes: JSON) -> String {
        let given = Set((modes.array ?? []).compactMap(\.string))
        return [
            ("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"),
        ]
        .filter { given.contains($0.0) }.map(\.1).joined(separator: ",")
    }

    /// The access mode checks claims and volumes share.
    static func validateAccessModes(_ modes: JSON, _ path: String, detail: String) -> [APIError.Cause] {
        let list = modes.array ?? []
        if list.isEmpty { return [FieldChecks.required(path, detail)] }
        var errs: [APIError.Cause] = []
        for mode in list { errs += FieldChecks.supported(mode, accessModes, path) }
        let names = list.compactMap(\.string)
        if names.contains("ReadWriteOncePod") && names.contains(where: { $0 != "ReadWriteOncePod" }) {
            errs.append(FieldChecks.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
        }
        return errs
    }

    /// A storage amount (a quantity string, or a bare number) in milli-units; nil when it is not one.
    static func storageMilli(_ value: JSON) -> Int64? {
        (value.string ?? value.int.map(String.init)).flatMap(Quantity.milli)
    }

    /// ValidatePositiveQuantityValue on a storage amount.
    static func validateStorage(_ value: JSON, _ path: String) -> [APIError.Cause] {
        if value.isNull { return [FieldChecks.required(path)] }
        guard let text = value.string ?? value.int.map(String.init), let milli = Quantity.milli(text) else {
            return [FieldChecks.invalid(path, value, "must be a quantity")]
        }
        return milli > 0 ? [] : [FieldChecks.invalid(path, .string(text), "must be greater than zero")]
    }
}

struct PersistentVolumeClaimStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"]["volumeMode"].isNull { obj["spec"]["volumeMode"] = "Filesystem" }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = ["phase": "Pending"]
    }

    /// DefaultStorageClass (a claim that names no class gets the default one, the newest when several
    /// are marked) and StorageObjectInUseProtection (the pvc-protection finalizer).
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        PersistentVolumeRules.protect(&obj, with: PersistentVolumeRules.claimProtection)
        guard obj["spec"]["storageClassName"].isNull,
            obj["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].isNull
        else { return }
        let classes = try await handler.storedObjects(Registry.storageClasses, namespace: nil).map(\.object)
        let newest = classes.filter(StorageClassStrategy.isDefault).max { a, b in
            let (ta, tb) = (
                a["metadata"]["creationTimestamp"].string ?? "", b["metadata"]["creationTimestamp"].string ?? ""
            )
            return ta != tb ? ta < tb : (a["metadata"]["name"].string ?? "") > (b["metadata"]["name"].string ?? "")
        }
        if let name = newest?["metadata"]["name"].string { obj["spec"]["storageClassName"] = .string(name) }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs = PersistentVolumeRules.validateAccessModes(
            spec["accessModes"], "spec.accessModes", detail: "at least 1 access mode is required")
        errs += FieldChecks.labelSelector(spec["selector"], "spec.selector")
        errs += PersistentVolumeRules.validateStorage(
            spec["resources"]["requests"]["storage"], "spec.resources[storage]")
        errs += PersistentVolumeRules.validateModeAndClass(spec)
        return errs
    }

    /// ValidatePersistentVolumeClaimUpdate: the spec is fixed once created, except the requested size of
    /// a bound claim (expansion), its volumeAttributesClassName, and the volume name the binder sets once.
    /// The size may go down again only as far as the volume's capacity (1.32's RecoverVolumeExpansionFailure,
    /// on by default: undoing an expansion that failed).
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        var new = obj["spec"]
        var was = old["spec"]
        let bound = old["status"]["phase"].string == "Bound"
        if bound { new["resources"]["requests"] = was["resources"]["requests"] }
        new["volumeAttributesClassName"] = .null
        was["volumeAttributesClassName"] = .null
        if (was["volumeName"].string ?? "").isEmpty { new["volumeName"] = was["volumeName"] }
        if new != was {
            return [
                FieldChecks.forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
                )
            ]
        }
        let milli = PersistentVolumeRules.storageMilli
        let path = "spec.resources.requests.storage"
        guard bound, let requested = milli(obj["spec"]["resources"]["requests"]["storage"]),
            let before = milli(old["spec"]["resources"]["requests"]["storage"]), requested < before
        else { return [] }
        if let capacity = milli(old["status"]["capacity"]["storage"]), requested < capacity {
            return [FieldChecks.forbidden(path, "field can not be less than status.capacity")]
        }
        return []
    }

    /// Upstream's PersistentVolumeClaimResize admission: a claim grows only once bound, and only where
    /// its StorageClass (the same before and after) says `allowVolumeExpansion: true`. local-path's class
    /// does not, as k3s's does not: its directories have no size to grow.
    func admitUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        guard ctx.subresource == nil else { return }
        let milli = PersistentVolumeRules.storageMilli
        guard let requested = milli(obj["spec"]["resources"]["requests"]["storage"]),
            let before = milli(old["spec"]["resources"]["requests"]["storage"]), requested > before
        else { return }
        let name = obj["metadata"]["name"].string ?? ""
        guard old["status"]["phase"].string == "Bound" else {
            throw APIError.forbidden(
                "persistentvolumeclaims \"\(name)\" is forbidden: Only bound persistent volume claims can be expanded")
        }
        let className = obj["spec"]["storageClassName"].string ?? ""
        var allowed = false
        if !className.isEmpty, className == old["spec"]["storageClassName"].string,
            let storageClass = try await handler.storedObject(Registry.storageClasses, namespace: nil, name: className)
        {
            allowed = storageClass["allowVolumeExpansion"].bool ?? false
        }
        guard allowed else {
            throw APIError.forbidden(
                "persistentvolumeclaims \"\(name)\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
            )
        }
    }

    /// kubectl's columns (printPersistentVolumeClaim).
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Status"), .init(name: "Volume"), .init(name: "Capacity"),
            .init(name: "Access Modes"), .init(name: "StorageClass"), .init(name: "VolumeAttributesClass"),
            Tables.ageColumn, .init(name: "VolumeMode", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        let phase = obj["metadata"]["deletionTimestamp"].isNull ? (status["phase"].string ?? "") : "Terminating"
        let bound = !(spec["volumeName"].string ?? "").isEmpty
        return [
            Tables.nameCell(obj), .string(phase), .string(spec["volumeName"].string ?? ""),
            .string(bound ? (status["capacity"]["storage"].string ?? "") : ""),
            .string(bound ? PersistentVolumeRules.accessModesText(status["accessModes"]) : ""),
            .string(
                spec["storageClassName"].string
                    ?? obj["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].string ?? ""),
            .string(spec["volumeAttributesClassName"].string ?? "<unset>"), Tables.ageCell(obj),
            .string(spec["volumeMode"].string ?? "<unset>"),
        ]
    }
}

struct PersistentVolumeStrategy: ResourceStrategy {
    /// The volume sources a PersistentVolumeSpec may name (exactly one).
    static let sources = [
        "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi", "cinder",
        "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
        "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi",
    ]

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"]["persistentVolumeReclaimPolicy"].isNull {
            obj["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
        }
        if obj["spec"]["volumeMode"].isNull { obj["spec"]["volumeMode"] = "Filesystem" }
    }
    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) {
        obj["status"] = ["phase": "Pending"]
    }

    /// StorageObjectInUseProtection: the pv-protection finalizer.
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        PersistentVolumeRules.protect(&obj, with: PersistentVolumeRules.volumeProtection)
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs = PersistentVolumeRules.validateAccessModes(spec["accessModes"], "spec.accessModes", detail: "")
        if (spec["capacity"].object ?? [:]).isEmpty {
            errs.append(FieldChecks.required("spec.capacity"))
        } else {
            errs += PersistentVolumeRules.validateStorage(spec["capacity"]["storage"], "spec.capacity[storage]")
        }
        let named = Self.sources.filter { !spec[$0].isNull }
        if named.isEmpty {
            errs.append(FieldChecks.required("spec", "must specify a volume type"))
        } else {
            for extra in named.dropFirst() {
                errs.append(FieldChecks.forbidden("spec.\(extra)", "may not specify more than 1 volume type"))
            }
        }
        if let path = spec["hostPath"]["path"].string, path.isEmpty {
            errs.append(FieldChecks.required("spec.hostPath.path"))
        }
        errs += FieldChecks.supported(
            spec["persistentVolumeReclaimPolicy"], ["Delete", "Recycle", "Retain"], "spec.persistentVolumeReclaimPolicy"
        )
        errs += PersistentVolumeRules.validateModeAndClass(spec)
        return errs
    }

    /// ValidatePersistentVolumeUpdate: the volume mode never changes.
    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["spec"]["volumeMode"], old["spec"]["volumeMode"], "volumeMode")
    }

    /// kubectl's columns (printPersistentVolume).
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Capacity"), .init(name: "Access Modes"), .init(name: "Reclaim Policy"),
            .init(name: "Status"), .init(name: "Claim"), .init(name: "StorageClass"),
            .init(name: "VolumeAttributesClass"), .init(name: "Reason"), Tables.ageColumn,
            .init(name: "VolumeMode", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        let ref = spec["claimRef"]
        let claim = ref.isNull ? "" : "\(ref["namespace"].string ?? "")/\(ref["name"].string ?? "")"
        let phase = obj["metadata"]["deletionTimestamp"].isNull ? (status["phase"].string ?? "") : "Terminating"
        return [
            Tables.nameCell(obj), .string(spec["capacity"]["storage"].string ?? ""),
            .string(PersistentVolumeRules.accessModesText(spec["accessModes"])),
            .string(spec["persistentVolumeReclaimPolicy"].string ?? ""), .string(phase), .string(claim),
            .string(spec["storageClassName"].string ?? ""),
            .string(spec["volumeAttributesClassName"].string ?? "<unset>"),
            .string(status["reason"].string ?? ""), Tables.ageCell(obj),
            .string(spec["volumeMode"].string ?? "<unset>"),
        ]
    }
}
