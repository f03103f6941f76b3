#!/usr/bin/env python3
"""Writes Sources/BerthAPI/ProtobufSchema.swift: the protobuf schema of every kind the API server serves,
as data for the decoder in Sources/BerthAPI/Protobuf.swift.

    scripts/gen-protobuf-schema.py API_DIR APIMACHINERY_DIR > Sources/BerthAPI/ProtobufSchema.swift

API_DIR is a checkout of k8s.io/api, APIMACHINERY_DIR one of k8s.io/apimachinery. The source of truth is
the `protobuf:"…"` tag on each Go struct field in types.go (field number, JSON name from the `json:` tag,
and, from the Go type and `omitempty`, whether Go's JSON encoding keeps a zero value); every message is then
cross-checked against the package's generated.proto (numbers, names, repeated/map), and the script
fails on any difference. Field numbers never change upstream, so a newer checkout only adds fields.
"""
import os, re, sys

PACKAGES = {  # Go import path → (short name, directory relative to a checkout)
    "k8s.io/api/core/v1": ("core", "api", "core/v1"),
    "k8s.io/api/apps/v1": ("apps", "api", "apps/v1"),
    "k8s.io/api/autoscaling/v1": ("autoscaling", "api", "autoscaling/v1"),
    "k8s.io/api/coordination/v1": ("coordination", "api", "coordination/v1"),
    "k8s.io/api/discovery/v1": ("discovery", "api", "discovery/v1"),
    "k8s.io/api/authorization/v1": ("authorization", "api", "authorization/v1"),
    "k8s.io/api/policy/v1": ("policy", "api", "policy/v1"),
    "k8s.io/apimachinery/pkg/apis/meta/v1": ("meta", "apimachinery", "pkg/apis/meta/v1"),
}
OPAQUE = {"k8s.io/apimachinery/pkg/util/intstr": "intstr", "k8s.io/apimachinery/pkg/api/resource": "resource",
          "k8s.io/apimachinery/pkg/types": "types", "k8s.io/apimachinery/pkg/runtime": "runtime"}
# Kinds a request body may carry: Kind → (apiVersion it must name, or None for any; root message).
ROOTS = [("Namespace", "v1", "core"), ("ConfigMap", "v1", "core"), ("Secret", "v1", "core"),
         ("ServiceAccount", "v1", "core"), ("Service", "v1", "core"), ("Pod", "v1", "core"),
         ("Endpoints", "v1", "core"), ("Event", "v1", "core"), ("Node", "v1", "core"), ("Binding", "v1", "core"),
         ("Deployment", "apps/v1", "apps"), ("ReplicaSet", "apps/v1", "apps"), ("DaemonSet", "apps/v1", "apps"),
         ("Scale", "autoscaling/v1", "autoscaling"), ("Lease", "coordination.k8s.io/v1", "coordination"),
         ("EndpointSlice", "discovery.k8s.io/v1", "discovery"),
         ("SelfSubjectAccessReview", "authorization.k8s.io/v1", "authorization"),
         ("Eviction", "policy/v1", "policy"),
         ("DeleteOptions", None, "meta")]
SCALARS = {"string": "s", "int32": "i", "int64": "i", "int": "i", "uint32": "i", "uint64": "i", "bool": "b",
           "float64": "f", "[]byte": "y"}
SPECIAL = {("meta", "Time"): "t", ("meta", "MicroTime"): "u", ("meta", "Duration"): "D", ("meta", "FieldsV1"): "j",
           ("resource", "Quantity"): "q", ("intstr", "IntOrString"): "x", ("types", "UID"): "s"}

api_dir, am_dir = sys.argv[1], sys.argv[2]
root_of = {"api": api_dir, "apimachinery": am_dir}
structs, aliases, imports, protos = {}, {}, {}, {}

def strip_comments(src):
    return re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", src), flags=re.S)

for path, (pkg, repo, rel) in PACKAGES.items():
    d = os.path.join(root_of[repo], rel)
    src = strip_comments(open(os.path.join(d, "types.go")).read())
    imp = {}
    for m in re.finditer(r'^\s*(\w+\s+)?"([^"]+)"\s*$', src.split(")", 1)[0] if "import (" in src else "", flags=re.M):
        p = m.group(2)
        alias = (m.group(1) or p.rsplit("/", 1)[-1]).strip()
        imp[alias] = PACKAGES.get(p, (OPAQUE.get(p),))[0]
    imports[pkg] = imp
    for m in re.finditer(r"^type (\w+) struct \{(.*?)^\}", src, flags=re.M | re.S):
        fields = []
        for line in m.group(2).split("\n"):
            fm = re.match(r"^\s*(?:(\w+)\s+)?([\w.*\[\]]+)\s+`(.*)`\s*$", line)
            if fm:
                fields.append(fm.groups())
        structs[(pkg, m.group(1))] = fields
    for m in re.finditer(r"^type (\w+) ([\w.\[\]]+)\s*$", src, flags=re.M):
        aliases[(pkg, m.group(1))] = m.group(2)
    psrc = strip_comments(open(os.path.join(d, "generated.proto")).read())
    for m in re.finditer(r"message (\w+) \{(.*?)\n\}", psrc, flags=re.S):
        fs = {}
        for fm in re.finditer(r"(?:(optional|repeated)\s+)?(?<![\w<.])(?=[\w.])(?!optional|repeated)([\w.<>, ]+?)\s+(\w+) = (\d+);", m.group(2)):
            fs[int(fm.group(4))] = (fm.group(3), fm.group(1) or "", fm.group(2))
        protos[(pkg, m.group(1))] = fs

def resolve(pkg, name):
    if "." in name:
        alias, n = name.split(".")
        return (imports[pkg][alias], n)
    return (pkg, name)

order, messages = [], {}

def code(pkg, t):
    if t.startswith("*"):
        return code(pkg, t[1:])
    if t in SCALARS:
        return SCALARS[t]
    if t.startswith("[]"):
        return "[" + code(pkg, t[2:])
    m = re.match(r"map\[[\w.]+\](.*)", t)
    if m:
        return "{" + code(pkg, m.group(1))
    q = resolve(pkg, t)
    if q in SPECIAL:
        return SPECIAL[q]
    if q in aliases:
        return code(q[0], aliases[q])
    if q in structs:
        visit(q)
        return "@%s.%s" % q
    sys.exit("unknown Go type %s in package %s" % (t, pkg))

def visit(q):
    if q in messages:
        return
    messages[q] = []
    out = []
    for name, gotype, tag in structs[q]:
        pm, jm = re.search(r'protobuf:"([^"]*)"', tag), re.search(r'json:"([^"]*)"', tag)
        if not pm or (jm and jm.group(1).startswith("-")):
            continue
        num = int(pm.group(1).split(",")[1])
        json_name = jm.group(1).split(",")[0] if jm else ""
        c = code(q[0], gotype)
        # Go's JSON encoding drops a zero scalar only if the field is not a pointer and has omitempty.
        omitempty = jm is not None and "omitempty" in jm.group(1).split(",")[1:]
        keep_zero = c[0] not in "@[{tuDj" and (gotype.startswith("*") or not omitempty)
        out.append((num, json_name or "-", c, keep_zero))
    messages[q] = out
    order.append(q)
    check(q, out)

def check(q, fields):
    proto = protos.get(q)
    if proto is None:
        sys.exit("no message %s in %s generated.proto" % (q[1], q[0]))
    if {f[0] for f in fields} != set(proto):
        sys.exit("%s.%s: field numbers differ: types.go %s, generated.proto %s" % (q + (sorted(f[0] for f in fields), sorted(proto))))
    for num, json_name, c, _ in fields:
        pname, label, ptype = proto[num]
        inline = json_name == "-"
        if (not inline and pname != json_name) or (c[0] == "[") != (label == "repeated" and c != "y") \
                or (c[0] == "{") != ptype.startswith("map<"):
            sys.exit("%s.%s field %d: types.go %s %s, generated.proto %s %s %s" % (q + (num, json_name, c, label, ptype, pname)))

for kind, _, pkg in ROOTS:
    visit((pkg, kind))

short = {}
for p, n in order:
    short.setdefault(n, []).append(p)
def msg_name(q):
    return q[1] if len(short[q[1]]) == 1 else "%s.%s" % q
def render(c):
    return re.sub(r"@(\w+)\.(\w+)", lambda m: msg_name((m.group(1), m.group(2))), c)

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

print("""// Generated by scripts/gen-protobuf-schema.py from k8s.io/api and k8s.io/apimachinery (the `protobuf:` tags
// of types.go, cross-checked against generated.proto). Re-run the script rather than editing by hand.

extension Protobuf {
    /// The root message of each kind a protobuf request body may carry, and the apiVersion it must name
    /// (nil: any, as for DeleteOptions, which every group version accepts).
    static let kinds: [String: (apiVersion: String?, message: String)] = [""")
for kind, av, pkg in ROOTS:
    print('        "%s": (%s, "%s"),' % (kind, '"%s"' % av if av else "nil", msg_name((pkg, kind))))
print("""    ]

    /// One message per line (continued on lines that start with spaces): its name, then
    /// `number:jsonName:type` per field; see `Protobuf.FieldType.init(code:)` for the type letters.
    /// A jsonName of `-` is an embedded struct whose fields sit inline in the JSON object. `?` marks a
    /// scalar whose zero value is kept, as Go's JSON encoding keeps it (a pointer, or no omitempty); other
    /// zero scalars are omitted.
    static let schemaText = \"\"\"""")
for l in lines:
    print("        " + l)
print("""        \"\"\"
}""")
print("%d messages, %d fields" % (len(order), sum(len(messages[q]) for q in order)), file=sys.stderr)
