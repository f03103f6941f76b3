#!/usr/bin/env python3
"""Generates Berth's typed Kubernetes model from scripts/kube-model/kubernetes-1.32.json (written by
extract.py), and nothing else:

  Sources/BerthKube/Generated/<package>_<version>.swift   one namespace per group version (CoreV1, AppsV1, …)
  Sources/BerthKube/Generated/Aliases.swift              Pod = CoreV1.Pod and the like, where unambiguous
  Sources/BerthAPI/ProtobufSchema.swift                  the table Sources/BerthAPI/Protobuf.swift reads
                                                         (apiextensions/v1 and metrics/v1beta1 only here:
                                                         CustomResources/ has its own types for the
                                                         definitions it validates; metrics are built as JSON)
  Sources/BerthAPI/SchemaDefinitions.swift               the table Sources/BerthAPI/Schema.swift reads

    scripts/kube-model/generate.py           write the files
    scripts/kube-model/generate.py --check   fail if the committed files differ from what it would write

The JSON rule the generated code follows (mirroring Go's encoding/json on the Go types):
  * a Go pointer (`*T`) is `T?`: nil is omitted if the field is omitempty, written `null` otherwise;
  * a scalar or string enum with omitempty is `T?`: nil is omitted, any value (even "" or 0) is written,
    so what a client sent survives a round trip; without omitempty it is `T` with Go's zero, always written
    (`containerPort: 0`, as Go writes it);
  * a slice or map is a non-optional collection: with omitempty an empty one is omitted (as Go omits it),
    without, it is written as `[]` / `{}` (Go writes `null` for a nil one; both read the same everywhere);
  * a struct (and Quantity, IntOrString, Duration, RawExtension) is non-optional and always written, as
    Go never omits a struct; metav1.Time and MicroTime are `Time?`, nil written `null`, as Go writes a zero
    Time (`creationTimestamp: null`);
  * embedded (`json:",inline"`) structs are flattened into the parent's stored properties, with a
    computed property of the embedded type (`volume.volumeSource`) for code that wants it whole;
  * decoding: `null` leaves a field at its zero value; unknown members are dropped and, on request,
    reported by path.
"""
import json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FACTS = os.path.join(ROOT, "scripts/kube-model/kubernetes-1.32.json")
OUT_DIR = "Sources/BerthKube/Generated"
PROTOBUF_OUT = "Sources/BerthAPI/ProtobufSchema.swift"

KEYWORDS = {"associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
            "inout", "internal", "let", "open", "operator", "private", "protocol", "public", "rethrows", "static",
            "struct", "subscript", "typealias", "var", "break", "case", "continue", "default", "defer", "do",
            "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "switch", "where", "while",
            "as", "catch", "false", "is", "nil", "super", "self", "Self", "throw", "throws", "true", "try", "Type",
            "Any", "Protocol"}
# Go type names that cannot name a Swift nested type (`T.Protocol` is the metatype's syntax).
TYPE_RENAMES = {"Protocol": "IPProtocol"}
SCALAR_SWIFT = {"string": "String", "int32": "Int32", "int64": "Int64", "bool": "Bool", "float64": "Double",
                "bytes": "[UInt8]", "Time": "MetaV1.Time", "MicroTime": "MetaV1.MicroTime",
                "Duration": "MetaV1.Duration", "Quantity": "Quantity", "IntOrString": "IntOrString",
                "RawExtension": "RawExtension", "FieldsV1": "MetaV1.FieldsV1", "JSON": "AnyJSON"}
ZERO = {"string": '""', "int32": "0", "int64": "0", "bool": "false", "float64": "0", "bytes": "[]"}
STRUCTLIKE = {"Duration", "Quantity", "IntOrString", "RawExtension", "FieldsV1", "JSON"}
# Names never aliased at the top level: Swift's own, or ambiguous in meaning.
NO_ALIAS = {"Time", "Duration", "List", "Status", "Type", "Protocol", "Error", "Result", "Set", "Condition", "Handler"}
# Packages extracted for the protobuf table alone.
PROTOBUF_ONLY = {"apiextensions/v1", "metrics/v1beta1"}
# apiextensions' types whose JSON is a schema or something else (marshal.go), and the protobuf letters
# that say which else (see Protobuf.FieldType): each is a message {schema, the other form}.
SCHEMA_UNIONS = {"JSONSchemaPropsOrArray": "|[", "JSONSchemaPropsOrBool": "|b", "JSONSchemaPropsOrStringArray": "|s"}
EXTRA_ALIASES = ["meta/v1.ObjectMeta", "meta/v1.ListMeta", "meta/v1.TypeMeta", "meta/v1.LabelSelector",
                 "meta/v1.OwnerReference", "meta/v1.ManagedFieldsEntry", "meta/v1.DeleteOptions",
                 "meta/v1.WatchEvent", "core/v1.Container", "core/v1.PodSpec", "core/v1.PodTemplateSpec",
                 "core/v1.PodStatus", "core/v1.ContainerPort", "core/v1.ServicePort", "core/v1.Volume"]


def namespace(pkg):
    group, version = pkg.split("/")
    return group[0].upper() + group[1:] + version[0].upper() + version[1:]


def swift_type_name(name):
    return TYPE_RENAMES.get(name, name)


def ident(name):
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        sys.exit("not a Swift identifier: %r" % name)
    return "`%s`" % name if name in KEYWORDS else name


def lower_camel(name):
    m = re.match(r"^([A-Z]+)(.*)$", name)
    if not m:
        return name
    run, rest = m.groups()
    if len(run) > 1 and rest[:1].islower():
        return run[:-1].lower() + run[-1] + rest
    return run.lower() + rest


def words(name):
    return re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+|[A-Z]+", name)


class Model:
    def __init__(self, facts):
        self.packages = facts["packages"]
        # The packages generated as Swift types (and in the JSON schema table).
        self.typed = [p for p in self.packages if p["package"] not in PROTOBUF_ONLY]
        self.structs = {(p["package"], n): s for p in self.packages for n, s in p["structs"].items()}
        self.enums = {(p["package"], n): v for p in self.packages for n, v in p["enums"].items()}

    def ref(self, t):
        pkg, name = t.rsplit(".", 1)
        return pkg, name

    def swift(self, t):
        """The Swift type of a facts type, ignoring optionality."""
        if t.startswith("*"):
            return self.swift(t[1:])
        if t.startswith("[]"):
            return "[%s]" % self.swift(t[2:])
        if t.startswith("map[]"):
            return "[String: %s]" % self.swift(t[5:])
        if t in SCALAR_SWIFT:
            return SCALAR_SWIFT[t]
        pkg, name = self.ref(t)
        return "%s.%s" % (namespace(pkg), swift_type_name(name))

    def is_boxed(self, f):
        """A pointer to a generated struct: held in a Box, so an absent one costs one word."""
        t = f["type"]
        return t.startswith("*") and "." in t[1:] and self.ref(t[1:]) in self.structs

    def is_indirect(self, f):
        """A required generated struct of several fields (an object's metadata, spec and status): held in an
        Indirect, one word inline, so an object is a few words that its copies share instead of ~800
        bytes (a Pod's ObjectMeta, PodSpec and PodStatus inline) that every cache bucket and copy repeats."""
        t = f["type"]
        if t.startswith(("*", "[]", "map[]")) or "." not in t or self.ref(t) not in self.structs:
            return False
        return len(self.flat_fields(self.ref(t))) >= 4

    def is_bytes(self, t):
        return t.lstrip("*") in ("bytes", "map[]bytes")

    def flat_fields(self, q):
        """(json name, property name, field facts) of a struct, embedded structs' fields flattened in."""
        out, seen = [], set()
        own = [f for f in self.structs[q]["fields"] if not f.get("inline")]
        for f in own:
            seen.add(f["json"])
        for f in self.structs[q]["fields"]:
            if f.get("inline"):
                for j, prop, g in self.flat_fields(self.ref(f["type"])):
                    if j not in seen:
                        seen.add(j)
                        out.append((j, prop, g))
            else:
                out.append((f["json"], f["json"], f))
        return out

    def field_shape(self, f):
        """(Swift type of the property, its zero, how it is written)."""
        t = f["type"]
        omit = f.get("omitempty", False)
        if t.startswith("*"):
            return self.swift(t) + "?", "nil", "omit-nil" if omit else "null-nil"
        if t in ("Time", "MicroTime"):
            return self.swift(t) + "?", "nil", "null-nil"
        if t.startswith("[]") or t.startswith("map[]") or t == "bytes":
            zero = "[:]" if t.startswith("map[]") else "[]"
            return self.swift(t), zero, "omit-empty" if omit else "always"
        if t in STRUCTLIKE or (("." in t) and self.ref(t) in self.structs):
            return self.swift(t), ".init()", "always"
        if omit:
            return self.swift(t) + "?", "nil", "omit-nil"
        if t in ZERO:
            return self.swift(t), ZERO[t], "always"
        return self.swift(t), '.init(rawValue: "")', "always"  # an enum


def encode_expr(model, f, prop):
    t = f["type"].lstrip("*")
    if t == "bytes":
        return ".string(Base64Bytes.encode(%s))" % prop
    if t == "map[]bytes":
        return ".object(%s.mapValues { .string(Base64Bytes.encode($0)) })" % prop
    return "%s.kubeJSON()" % prop


def gen_struct(model, pkg, name, s, out):
    ns, tname = namespace(pkg), swift_type_name(name)
    flat = model.flat_fields((pkg, name))
    is_object = s.get("object") and pkg != "meta/v1"
    w = out.append
    w("    /// %s `%s`." % (pkg, name))
    conformances = ["KubeObject" if is_object else "KubeModel"]
    if any(j == "metadata" and model.field_shape(f)[0] == "MetaV1.ObjectMeta" for j, _, f in flat):
        conformances.append("HasObjectMeta")
    w("    public struct %s: %s {" % (tname, ", ".join(conformances)))
    if is_object:
        p = next(p for p in model.packages if p["package"] == pkg)
        av = p["version"] if p["group"] == "" else "%s/%s" % (p["group"], p["version"])
        w('        public static let servedAPIVersion = "%s"' % av)
        w('        public static let servedKind = "%s"' % name)
        w("")
    props = []
    for j, prop, f in flat:
        st, zero, how = model.field_shape(f)
        props.append((j, ident(prop), f, st, zero, how))
        if model.is_boxed(f):
            # An optional nested struct is held out of line (see Box): most are nil in most objects,
            # and inline they made a Container 1.4 KB.
            inner = model.swift(f["type"])
            w("        public var %s: %s {" % (ident(prop), st))
            w("            get { _%s?.value }" % prop)
            w("            set { _%s = newValue.map(Box.init) }" % prop)
            w("        }")
            w("        private var _%s: Box<%s>? = nil" % (prop, inner))
        elif model.is_indirect(f):
            # A required nested struct, held out of line as well (see Indirect).
            inner = model.swift(f["type"])
            w("        public var %s: %s {" % (ident(prop), st))
            w("            get { _%s.value }" % prop)
            w("            set { _%s.value = newValue }" % prop)
            w("            _modify { yield &_%s.value }" % prop)
            w("        }")
            w("        private var _%s = Indirect<%s>()" % (prop, inner))
        else:
            w("        public var %s: %s = %s" % (ident(prop), st, zero))
    # Embedded structs, whole.
    for f in s["fields"]:
        if not f.get("inline"):
            continue
        inner = model.flat_fields(model.ref(f["type"]))
        names = {p[0] for p in props}
        if not all(j in names for j, _, _ in inner):
            continue
        w("")
        w("        /// The embedded `%s`, whose fields are flattened into this type." % f["go"])
        w("        public var %s: %s {" % (ident(lower_camel(f["go"])), model.swift(f["type"])))
        w("            get { %s(%s) }" % (model.swift(f["type"]), ", ".join("%s: %s" % (ident(p), ident(p)) for _, p, _ in inner)))
        w("            set {")
        for _, p, _ in inner:
            w("                %s = newValue.%s" % (ident(p), ident(p)))
        w("            }")
        w("        }")
    w("")
    w("        public init() {}")
    if props:
        w("")
        w("        public init(")
        for i, (j, prop, f, st, zero, how) in enumerate(props):
            w("            %s: %s = %s%s" % (prop, st, zero, "," if i + 1 < len(props) else ""))
        w("        ) {")
        for j, prop, f, st, zero, how in props:
            w("            self.%s = %s" % (prop.strip("`"), prop))
        w("        }")
    w("")
    w("        public init(kubeJSON json: JSON, _ d: inout KubeJSONDecoder) throws(KubeJSONError) {")
    w("            self.init()")
    w("            guard case .object(let members) = json else {")
    w("                if case .null = json { return }")
    w('                throw .mismatch(expected: "object", got: json)')
    w("            }")
    w("            for (memberKey, memberValue) in members {")
    w("                switch memberKey {")
    for j, prop, f, st, zero, how in props:
        fn = "readBytes" if model.is_bytes(f["type"]) else "read"
        target = "_" + prop.strip("`") if model.is_boxed(f) or model.is_indirect(f) else prop
        w('                case "%s": try d.%s(memberValue, memberKey, into: &self.%s)' % (j, fn, target))
    w("                default: d.unknown(memberKey)")
    w("                }")
    w("            }")
    w("        }")
    w("")
    w("        public func kubeJSON() -> JSON {")
    w("            var o = [String: JSON](minimumCapacity: %d)" % max(len(props), 1))
    for j, prop, f, st, zero, how in props:
        if how == "always":
            w('            o["%s"] = %s' % (j, encode_expr(model, f, "self." + prop)))
        elif how == "omit-empty":
            w('            if !self.%s.isEmpty { o["%s"] = %s }' % (prop, j, encode_expr(model, f, "self." + prop)))
        elif how == "omit-nil":
            w('            if let some = self.%s { o["%s"] = %s }' % (prop, j, encode_expr(model, f, "some")))
        else:
            w('            o["%s"] = self.%s.map { %s } ?? .null' % (j, prop, encode_expr(model, f, "$0")))
    w("            return .object(o)")
    w("        }")
    w("")
    w("        public init(from decoder: any Decoder) throws { self = try Self.decode(from: decoder) }")
    w("        public func encode(to encoder: any Encoder) throws { try encode(into: encoder) }")
    w("    }")
    w("")


def enum_static_names(type_name, consts):
    out, used = [], set()
    tw = words(type_name)
    for go, raw in consts:
        cw = words(go)
        n = 0
        while n < len(tw) and n < len(cw) - 1 and tw[n] == cw[n]:
            n += 1
        rest = "".join(cw[n:])
        name = lower_camel(rest) if rest and not rest[0].isdigit() else lower_camel(go)
        if name in used:
            name = lower_camel(go)
        if name in used or name in ("rawValue", "knownValues", "isKnown", "description"):
            continue
        used.add(name)
        out.append((name, raw))
    return out


def gen_enum(pkg, name, consts, out):
    tname = swift_type_name(name)
    w = out.append
    w("    /// %s `%s`: a string with known values; others are kept as they are." % (pkg, name))
    w("    public struct %s: KubeEnum {" % tname)
    w("        public var rawValue: String")
    w("        public init(rawValue: String) { self.rawValue = rawValue }")
    statics = enum_static_names(name, consts)
    for n, raw in statics:
        w("        public static let %s = %s(rawValue: %s)" % (ident(n), tname, json.dumps(raw)))
    w("        public static let knownValues: [%s] = [%s]" % (tname, ", ".join("." + ident(n) for n, _ in statics)))
    w("    }")
    w("")


HEADER = """// swift-format-ignore-file
// Generated by scripts/kube-model/generate.py from scripts/kube-model/kubernetes-1.32.json (facts
// extracted from k8s.io/api and k8s.io/apimachinery v0.32.9). Re-run the script rather than editing.
//
// JSON rule (Go's encoding/json on the Go types): pointers and omitempty scalars are optionals, nil
// omitted (a non-omitempty pointer's nil is `null`); other scalars always written; collections are never
// optional, an empty omitempty one omitted; structs always written; a nil Time is `null`. See
// generate.py's docstring for the whole rule.
"""


def gen_package(model, p):
    pkg, ns = p["package"], namespace(p["package"])
    out = [HEADER, "import BerthJSON", ""]
    if pkg == "meta/v1":
        out += ["/// k8s.io/apimachinery/pkg/apis/meta/v1: object metadata, lists, options, status.", "public enum %s {}" % ns, ""]
    else:
        grp = p["group"] or "core"
        out += ["/// The Kubernetes API group version %s/%s." % (grp, p["version"]), "public enum %s {}" % ns, ""]
    body = []
    for name, consts in p["enums"].items():
        gen_enum(pkg, name, consts, body)
    for name, s in p["structs"].items():
        gen_struct(model, pkg, name, s, body)
    for name, target in p["aliases"].items():
        body.append("    public typealias %s = %s" % (name, model.swift(target)))
        body.append("")
    while body and body[-1] == "":
        body.pop()
    out.append("extension %s {" % ns)
    out += body
    out.append("}")
    return "\n".join(out) + "\n"


def gen_aliases(model):
    counts = {}
    typed = {p["package"] for p in model.typed}
    for (pkg, name) in list(model.structs) + list(model.enums):
        if pkg in typed:
            counts.setdefault(name, []).append(pkg)
    picks = []
    for (pkg, name), s in model.structs.items():
        if s.get("object") and pkg != "meta/v1" and pkg in typed:
            picks.append((pkg, name))
    picks += [tuple(x.split(".")) for x in EXTRA_ALIASES]
    lines = [HEADER, "// The common types by their upstream names, where one group version alone uses the name.", ""]
    for pkg, name in picks:
        if len(counts[name]) == 1 and name not in NO_ALIAS and name not in TYPE_RENAMES:
            lines.append("public typealias %s = %s.%s" % (name, namespace(pkg), name))
    return "\n".join(lines) + "\n"


def gen_registry(model):
    lines = [HEADER, "/// Every generated top-level kind (lists included), for finding a type by apiVersion and kind.",
             "public enum KubeTypes {", "    public static let objects: [any KubeObject.Type] = ["]
    for (pkg, name), s in model.structs.items():
        if s.get("object") and pkg != "meta/v1" and pkg not in PROTOBUF_ONLY:
            lines.append("        %s.%s.self," % (namespace(pkg), swift_type_name(name)))
    lines += ["    ]", "",
              "    private static let byAPIVersionAndKind: [String: any KubeObject.Type] = Dictionary(",
              '        uniqueKeysWithValues: objects.map { ("\\($0.servedAPIVersion)/\\($0.servedKind)", $0) })', "",
              "    /// The type served as `apiVersion` and `kind` (\"apps/v1\", \"Deployment\"), if generated.",
              "    public static func type(apiVersion: String, kind: String) -> (any KubeObject.Type)? {",
              '        byAPIVersionAndKind["\\(apiVersion)/\\(kind)"]', "    }", "}"]
    return "\n".join(lines) + "\n"


# The protobuf table for Sources/BerthAPI/Protobuf.swift: kinds a request body may carry, Kind →
# (apiVersion it must name, or None for any; package of the root message).
PROTOBUF_ROOTS = [("Namespace", "v1", "core/v1"), ("ConfigMap", "v1", "core/v1"), ("Secret", "v1", "core/v1"),
                  ("ServiceAccount", "v1", "core/v1"), ("Service", "v1", "core/v1"), ("Pod", "v1", "core/v1"),
                  ("Endpoints", "v1", "core/v1"), ("Event", "v1", "core/v1"), ("Node", "v1", "core/v1"),
                  ("Binding", "v1", "core/v1"), ("PodTemplate", "v1", "core/v1"), ("LimitRange", "v1", "core/v1"),
                  ("PersistentVolumeClaim", "v1", "core/v1"), ("PersistentVolume", "v1", "core/v1"),
                  ("ResourceQuota", "v1", "core/v1"), ("ReplicationController", "v1", "core/v1"),
                  ("Deployment", "apps/v1", "apps/v1"),
                  ("ReplicaSet", "apps/v1", "apps/v1"), ("DaemonSet", "apps/v1", "apps/v1"),
                  ("StatefulSet", "apps/v1", "apps/v1"), ("ControllerRevision", "apps/v1", "apps/v1"),
                  ("Job", "batch/v1", "batch/v1"), ("CronJob", "batch/v1", "batch/v1"),
                  ("Scale", "autoscaling/v1", "autoscaling/v1"),
                  ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v1"), ("Lease", "coordination.k8s.io/v1", "coordination/v1"),
                  ("EndpointSlice", "discovery.k8s.io/v1", "discovery/v1"),
                  ("SelfSubjectAccessReview", "authorization.k8s.io/v1", "authorization/v1"),
                  ("SubjectAccessReview", "authorization.k8s.io/v1", "authorization/v1"),
                  ("LocalSubjectAccessReview", "authorization.k8s.io/v1", "authorization/v1"),
                  ("SelfSubjectRulesReview", "authorization.k8s.io/v1", "authorization/v1"),
                  ("Role", "rbac.authorization.k8s.io/v1", "rbac/v1"),
                  ("ClusterRole", "rbac.authorization.k8s.io/v1", "rbac/v1"),
                  ("RoleBinding", "rbac.authorization.k8s.io/v1", "rbac/v1"),
                  ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "rbac/v1"),
                  ("TokenRequest", "authentication.k8s.io/v1", "authentication/v1"),
                  ("TokenReview", "authentication.k8s.io/v1", "authentication/v1"),
                  ("SelfSubjectReview", "authentication.k8s.io/v1", "authentication/v1"),
                  ("Eviction", "policy/v1", "policy/v1"),
                  ("PodDisruptionBudget", "policy/v1", "policy/v1"),
                  ("PriorityClass", "scheduling.k8s.io/v1", "scheduling/v1"),
                  ("CertificateSigningRequest", "certificates.k8s.io/v1", "certificates/v1"),
                  ("Ingress", "networking.k8s.io/v1", "networking/v1"),
                  ("IngressClass", "networking.k8s.io/v1", "networking/v1"),
                  ("NetworkPolicy", "networking.k8s.io/v1", "networking/v1"),
                  ("StorageClass", "storage.k8s.io/v1", "storage/v1"), ("CSIDriver", "storage.k8s.io/v1", "storage/v1"),
                  ("CSINode", "storage.k8s.io/v1", "storage/v1"),
                  ("CSIStorageCapacity", "storage.k8s.io/v1", "storage/v1"),
                  ("VolumeAttachment", "storage.k8s.io/v1", "storage/v1"),
                  ("RuntimeClass", "node.k8s.io/v1", "node/v1"),
                  ("ComponentStatus", "v1", "core/v1"),
                  ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v2"),
                  ("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1", "admissionregistration/v1"),
                  ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1", "admissionregistration/v1"),
                  ("ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1", "admissionregistration/v1"),
                  ("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io/v1", "admissionregistration/v1"),
                  ("FlowSchema", "flowcontrol.apiserver.k8s.io/v1", "flowcontrol/v1"),
                  ("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", "flowcontrol/v1"),
                  ("CustomResourceDefinition", "apiextensions.k8s.io/v1", "apiextensions/v1"),
                  # What the API server's metrics.k8s.io answers, as metrics-server does.
                  ("NodeMetrics", "metrics.k8s.io/v1beta1", "metrics/v1beta1"),
                  ("PodMetrics", "metrics.k8s.io/v1beta1", "metrics/v1beta1"),
                  # What responses carry besides objects: errors and deletions (Status, apiVersion "v1"
                  # whatever the group, as upstream writes it) and the list envelope's metadata.
                  ("Event", "events.k8s.io/v1", "events/v1"),
                  # What metadata-only clients ask resources to answer as (one message at both versions).
                  ("PartialObjectMetadata", "meta.k8s.io/v1", "meta/v1"),
                  ("PartialObjectMetadata", "meta.k8s.io/v1beta1", "meta/v1"),
                  ("Status", "v1", "meta/v1"), ("ListMeta", None, "meta/v1"),
                  ("DeleteOptions", None, "meta/v1")]
PROTO_CODES = {"string": "s", "int32": "i", "int64": "i", "bool": "b", "float64": "f", "bytes": "y", "Time": "t",
               "MicroTime": "u", "Duration": "D", "FieldsV1": "j", "RawExtension": "j", "JSON": "j", "Quantity": "q", "IntOrString": "x"}


def type_code(model, t, codes, struct_code, table):
    """A field type in a table's letters: `codes` for scalars and specials, `[` a list, `{` a map with
    string keys, "s" a string enum, `struct_code(q)` a struct (pointers read as what they point to)."""
    t = t.lstrip("*")
    if t in codes:
        return codes[t]
    if t in SCHEMA_UNIONS:
        return SCHEMA_UNIONS[t] + struct_code(("apiextensions/v1", "JSONSchemaProps"))
    if t.startswith("[]"):
        return "[" + type_code(model, t[2:], codes, struct_code, table)
    if t.startswith("map[]"):
        return "{" + type_code(model, t[5:], codes, struct_code, table)
    q = model.ref(t)
    if q in model.enums:
        return "s"
    if q in model.structs:
        return struct_code(q)
    sys.exit("no %s form for %s" % (table, t))


def gen_protobuf(model):
    order, messages = [], {}

    def struct_code(q):
        visit(q)
        return "@%s.%s" % q

    def code(t):
        return type_code(model, t, PROTO_CODES, struct_code, "protobuf")

    def visit(q):
        if q in messages:
            return
        messages[q] = []
        fields = []
        for f in model.structs[q]["fields"]:
            if "proto" not in f:
                continue
            c = code(f["type"])
            pointer = f["type"].startswith("*")
            keep_zero = c[0] not in "@[{|tuDj" and (pointer or not f.get("omitempty"))
            fields.append((f["proto"][0], f["json"] or "-", c, keep_zero))
        messages[q] = fields
        order.append(q)

    for kind, _, pkg in PROTOBUF_ROOTS:
        visit((pkg, kind))
    short = {}
    for p, n in order:
        short.setdefault(n, []).append(p)

    def msg_name(q):
        """The bare name when one package has it, else group.Name, else (autoscaling v1 and v2 share
        every name) group.version.Name."""
        packages = short[q[1]]
        if len(packages) == 1:
            return q[1]
        groups = [p.split("/")[0] for p in packages]
        if groups.count(q[0].split("/")[0]) == 1:
            return "%s.%s" % (q[0].split("/")[0], q[1])
        return "%s.%s" % (q[0].replace("/", "."), q[1])

    def render(c):
        return re.sub(r"@([\w/]+)\.(\w+)", lambda m: msg_name((m.group(1), m.group(2))), c)

    lines = []
    for q in order:
        line = msg_name(q)
        for num, json_name, c, keep_zero in messages[q]:
            item = "%d:%s:%s%s" % (num, json_name, render(c), "?" if keep_zero else "")
            if len(line) + 1 + len(item) > 116:
                lines.append(line)
                line = "  " + item
            else:
                line += " " + item
        lines.append(line)
    out = ["""// swift-format-ignore-file
// Generated by scripts/kube-model/generate.py from scripts/kube-model/kubernetes-1.32.json (the `protobuf:`
// tags of k8s.io/api's types.go, cross-checked against generated.proto by extract.py). Re-run the script
// rather than editing by hand.

extension Protobuf {
    /// The root message of each kind, by `apiVersion/kind` ("apps/v1/Deployment"): what a request body
    /// may carry and a response is written as.
    static let kinds: [String: String] = ["""]
    for kind, av, pkg in PROTOBUF_ROOTS:
        if av:
            out.append('        "%s/%s": "%s",' % (av, kind, msg_name((pkg, kind))))
    out.append("""    ]

    /// Messages of no one group version: DeleteOptions, which every group version accepts, and the
    /// list envelope's metadata.
    static let anyVersionKinds: [String: String] = [""")
    for kind, av, pkg in PROTOBUF_ROOTS:
        if not av:
            out.append('        "%s": "%s",' % (kind, msg_name((pkg, kind))))
    out.append("""    ]

    /// One message per line (continued on lines that start with spaces): its name, then
    /// `number:jsonName:type` per field; see `Protobuf.FieldType.init(code:)` for the type letters.
    /// A jsonName of `-` is an embedded struct whose fields sit inline in the JSON object. `?` marks a
    /// scalar whose zero value is kept, as Go's JSON encoding keeps it (a pointer, or no omitempty); other
    /// zero scalars are omitted.
    static let schemaText = \"\"\"""")
    for l in lines:
        out.append("        " + l)
    out.append("""        \"\"\"
}""")
    return "\n".join(out) + "\n"


SCHEMA_OUT = "Sources/BerthAPI/SchemaDefinitions.swift"
SCHEMA_CODES = {"string": "s", "int32": "i", "int64": "l", "bool": "b", "float64": "n", "bytes": "y",
                "Time": "t", "MicroTime": "t", "Duration": "d", "Quantity": "q", "IntOrString": "o",
                "RawExtension": "a", "JSON": "a", "FieldsV1": "f"}


def schema_name(q):
    """The short name of a definition in the text table (`core.v1.Pod`); Schema.swift expands it to the
    OpenAPI name (`io.k8s.api.core.v1.Pod`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`)."""
    return "%s.%s" % (q[0].replace("/", "."), q[1])


def declared_default(model, pkg, f):
    """A field's `+default=` marker as a compact JSON literal (an enum constant resolved to its value),
    or None when it has none or it is the zero Go gives the field anyway."""
    if "default" not in f:
        return None
    text = f["default"]
    if text.startswith("ref("):
        const = text[4:-1]
        values = [v for (p, _), consts in model.enums.items() if p == pkg for n, v in consts if n == const]
        if len(values) != 1:
            raise SystemExit("default %s of %s: no single constant" % (text, f["json"]))
        value = values[0]
    else:
        value = json.loads(text)
    if not f["type"].startswith("*") and value in ("", 0, False):
        return None
    return json.dumps(value, separators=(",", ":"))


def gen_schema(model):
    """Every struct's JSON fields, for the type checks of request bodies, strategic merge patch and the
    OpenAPI documents (Sources/BerthAPI/Schema.swift reads the table)."""

    def code(t):
        return type_code(model, t, SCHEMA_CODES, lambda q: "@" + schema_name(q), "schema")

    lines = []
    for p in model.typed:
        for name in sorted(p["structs"]):
            q = (p["package"], name)
            line = schema_name(q)
            for json_name, _, f in model.flat_fields(q):
                item = "%s:%s" % (json_name, code(f["type"]))
                if f.get("patchMergeKey"):
                    item += "!" + f["patchMergeKey"]
                if f.get("patchStrategy"):
                    item += "~" + f["patchStrategy"]
                default = declared_default(model, q[0], f)
                if default is not None:
                    item += ("*=" if f["type"].startswith("*") else "=") + default
                if len(line) + 1 + len(item) > 116:
                    lines.append(line)
                    line = "  " + item
                else:
                    line += " " + item
            lines.append(line)
    out = ["""// swift-format-ignore-file
// Generated by scripts/kube-model/generate.py from scripts/kube-model/kubernetes-1.32.json (the JSON and
// patch tags of k8s.io/api's types.go). Re-run the script rather than editing by hand.

extension Schema {
    /// One struct per line (continued on lines that start with spaces): its short name, then
    /// `jsonName:type` per field, embedded structs' fields flattened in. Types: s string, i int32,
    /// l int64, b bool, n float64, y base64 bytes, t RFC 3339 time, d duration, q quantity, o int or
    /// string, a any JSON, f free-form object, `[T` a list, `{T` a map with string keys, `@name` a struct.
    /// A list may carry `!key` (its strategic-merge-patch merge key) and `~strategy` (its patch strategy);
    /// a field `=value`, its `+default=` marker as JSON, applied where the request leaves it unset or empty
    /// (`*=value` for a pointer: only where unset).
    static let definitionsText = \"\"\""""]
    for l in lines:
        out.append("        " + l)
    out.append("""        \"\"\"
}""")
    return "\n".join(out) + "\n"


def main():
    check = sys.argv[1:] == ["--check"]
    with open(FACTS) as f:
        model = Model(json.load(f))
    files = {}
    for p in model.typed:
        files[os.path.join(OUT_DIR, p["package"].replace("/", "_") + ".swift")] = gen_package(model, p)
    files[os.path.join(OUT_DIR, "Aliases.swift")] = gen_aliases(model)
    files[os.path.join(OUT_DIR, "Registry.swift")] = gen_registry(model)
    files[PROTOBUF_OUT] = gen_protobuf(model)
    files[SCHEMA_OUT] = gen_schema(model)
    stale = []
    for rel, text in files.items():
        path = os.path.join(ROOT, rel)
        current = open(path).read() if os.path.exists(path) else None
        if current != text:
            stale.append(rel)
            if not check:
                with open(path, "w") as f:
                    f.write(text)
    extra = set(os.listdir(os.path.join(ROOT, OUT_DIR))) - {os.path.basename(r) for r in files if r.startswith(OUT_DIR)}
    if check:
        if stale or extra:
            sys.exit("generated files differ from scripts/kube-model/generate.py's output: %s"
                     % ", ".join(stale + sorted(os.path.join(OUT_DIR, e) for e in extra)))
        return
    for e in extra:
        os.remove(os.path.join(ROOT, OUT_DIR, e))
    print("%d files, %d rewritten" % (len(files), len(stale)), file=sys.stderr)


if __name__ == "__main__":
    main()
