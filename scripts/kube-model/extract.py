#!/usr/bin/env python3
"""Extracts the facts Berth needs about the built-in Kubernetes API types into one committed JSON file,
scripts/kube-model/kubernetes-1.32.json, which generate.py turns into Swift (Sources/BerthKube/Generated)
and into the protobuf table (Sources/BerthAPI/ProtobufSchema.swift).

    scripts/kube-model/extract.py [--tag v0.32.9] API APIMACHINERY APIEXTENSIONS METRICS \
        > scripts/kube-model/kubernetes-1.32.json

API is k8s.io/api, APIMACHINERY k8s.io/apimachinery, APIEXTENSIONS k8s.io/apiextensions-apiserver
(CustomResourceDefinition's types) and METRICS k8s.io/metrics (NodeMetrics, PodMetrics), each either a checkout (a directory with the sources) or a git
repository read at --tag with `git show` (a bare mirror needs no work tree), e.g.
/work/.mirror/kubernetes+api/repo.

Why the Go sources and not OpenAPI: the upstream OpenAPI documents are not available here, and the Go
types carry the same facts (JSON names, omitempty, pointer-ness, `+optional`, `+default=`, the string
constants of enum types) plus what OpenAPI lacks: protobuf field numbers and wire forms. Every struct's
`protobuf:` tags are cross-checked against the package's generated.proto, and the script fails on any
difference. Only derived facts (names, numbers, flags) are written; no upstream text or comment is copied.

The facts file's format (ours, compact, stable key order so diffs stay readable):
  {"source": {...}, "packages": [{"package": "core/v1", "group": "", "version": "v1",
     "structs": {"Pod": {"object": true, "fields": [
        {"go": "Spec", "json": "spec", "type": "core/v1.PodSpec", "omitempty": true, "optional": true,
         "proto": [2, "bytes"]}, ...]}},
     "enums": {"PodPhase": [["PodPending", "Pending"], ...]},
     "aliases": {"ServiceInternalTrafficPolicyType": "core/v1.ServiceInternalTrafficPolicy"}}]}
"patchStrategy" and "patchMergeKey" are the strategic-merge-patch tags (e.g. "merge" by "name").
A field's "type" is: string int32 int64 bool float64 bytes, a special (Time MicroTime Duration Quantity
IntOrString RawExtension FieldsV1 JSON, and apiextensions' JSONSchemaPropsOrArray JSONSchemaPropsOrBool
JSONSchemaPropsOrStringArray: a schema or a list / bool / list of strings), a struct or enum "package.Name", or one built from them:
"*T" (a Go pointer), "[]T", "map[]T" (string keys). "json": "" with "inline": true is an embedded struct
whose fields sit in the parent's JSON object. "proto" is [number, wire form] from the protobuf tag, plus the message name when protobuf
wraps a named list type (`type Verbs []string`) in a message of its own.
"""
import json, os, re, subprocess, sys

# Package → (repository, directory, Go files holding its types, Kubernetes API group).
PACKAGES = {
    "meta/v1": ("apimachinery", "pkg/apis/meta/v1", ["types.go", "watch.go"], "meta.k8s.io"),
    "core/v1": ("api", "core/v1", ["types.go"], ""),
    "apps/v1": ("api", "apps/v1", ["types.go"], "apps"),
    "batch/v1": ("api", "batch/v1", ["types.go"], "batch"),
    "coordination/v1": ("api", "coordination/v1", ["types.go"], "coordination.k8s.io"),
    "discovery/v1": ("api", "discovery/v1", ["types.go"], "discovery.k8s.io"),
    "policy/v1": ("api", "policy/v1", ["types.go"], "policy"),
    "rbac/v1": ("api", "rbac/v1", ["types.go"], "rbac.authorization.k8s.io"),
    "networking/v1": ("api", "networking/v1", ["types.go"], "networking.k8s.io"),
    "autoscaling/v1": ("api", "autoscaling/v1", ["types.go"], "autoscaling"),
    "autoscaling/v2": ("api", "autoscaling/v2", ["types.go"], "autoscaling"),
    "authentication/v1": ("api", "authentication/v1", ["types.go"], "authentication.k8s.io"),
    "authorization/v1": ("api", "authorization/v1", ["types.go"], "authorization.k8s.io"),
    "scheduling/v1": ("api", "scheduling/v1", ["types.go"], "scheduling.k8s.io"),
    "storage/v1": ("api", "storage/v1", ["types.go"], "storage.k8s.io"),
    "node/v1": ("api", "node/v1", ["types.go"], "node.k8s.io"),
    "certificates/v1": ("api", "certificates/v1", ["types.go"], "certificates.k8s.io"),
    "admissionregistration/v1": ("api", "admissionregistration/v1", ["types.go"], "admissionregistration.k8s.io"),
    "flowcontrol/v1": ("api", "flowcontrol/v1", ["types.go"], "flowcontrol.apiserver.k8s.io"),
    "events/v1": ("api", "events/v1", ["types.go"], "events.k8s.io"),
    "apiextensions/v1": ("apiextensions", "pkg/apis/apiextensions/v1", ["types.go", "types_jsonschema.go"],
                         "apiextensions.k8s.io"),
    "metrics/v1beta1": ("metrics", "pkg/apis/metrics/v1beta1", ["types.go"], "metrics.k8s.io"),
}
IMPORT_PATHS = {"k8s.io/api/" + p: p for p in PACKAGES if PACKAGES[p][0] == "api"}
IMPORT_PATHS["k8s.io/apimachinery/pkg/apis/meta/v1"] = "meta/v1"
IMPORT_PATHS["k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"] = "apiextensions/v1"
IMPORT_PATHS["k8s.io/metrics/pkg/apis/metrics/v1beta1"] = "metrics/v1beta1"
# Packages whose types are hand-written in BerthKube (custom JSON forms), by Go name.
OPAQUE = {"k8s.io/apimachinery/pkg/util/intstr": {"IntOrString": "IntOrString"},
          "k8s.io/apimachinery/pkg/api/resource": {"Quantity": "Quantity"},
          "k8s.io/apimachinery/pkg/types": {"UID": "string", "NodeName": "string"},
          "k8s.io/apimachinery/pkg/runtime": {"RawExtension": "RawExtension"}}
# meta/v1 types with their own MarshalJSON, also hand-written.
META_SPECIAL = {"Time": "Time", "MicroTime": "MicroTime", "Duration": "Duration", "FieldsV1": "FieldsV1"}
# apiextensions/v1 types with their own MarshalJSON (marshal.go): any JSON kept as raw bytes, and a schema
# or something else in one field — their JSON forms are not their structs' fields.
SPECIAL = {"meta/v1": META_SPECIAL,
           "apiextensions/v1": {n: n for n in ("JSON", "JSONSchemaPropsOrArray", "JSONSchemaPropsOrBool",
                                               "JSONSchemaPropsOrStringArray")}}
SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "int": "int64", "uint32": "int64",
           "uint64": "int64", "bool": "bool", "float64": "float64", "[]byte": "bytes",
           "interface{}": "JSON", "any": "JSON"}


class Source:
    """Files of one repository, from a checkout or from a git repository at a tag."""

    def __init__(self, path, tag):
        self.path, self.tag = path, tag
        self.git = tag is not None or not os.path.isdir(os.path.join(path, "core")) and \
            not os.path.isdir(os.path.join(path, "pkg"))

    def read(self, rel):
        if self.git:
            return subprocess.run(["git", "--git-dir", self.path, "show", "%s:%s" % (self.tag or "HEAD", rel)],
                                  check=True, capture_output=True, text=True).stdout
        with open(os.path.join(self.path, rel)) as f:
            return f.read()

    def describe(self):
        if self.git:
            return self.tag or "HEAD"
        return "checkout"


def strip_comments(src):
    return re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", src), flags=re.S)


def parse_imports(src):
    imp = {}
    block = re.search(r"^import \((.*?)^\)", src, flags=re.M | re.S)
    lines = block.group(1).split("\n") if block else re.findall(r"^import (.*)$", src, flags=re.M)
    for line in lines:
        m = re.match(r'^\s*(\w+\s+)?"([^"]+)"\s*$', line)
        if m:
            alias = (m.group(1) or m.group(2).rsplit("/", 1)[-1]).strip()
            imp[alias] = m.group(2)
    return imp


def parse_struct_body(body):
    """Fields with the `+optional` / `+default=` markers of the comment lines just above each."""
    fields, markers = [], {}
    for line in body.split("\n"):
        s = line.strip()
        if s.startswith("//"):
            if re.match(r"//\s*\+optional\b", s):
                markers["optional"] = True
            d = re.match(r"//\s*\+default=(.*)$", s)
            if d:
                markers["default"] = d.group(1).strip()
            continue
        if not s:
            continue
        s = re.sub(r"\s//.*$", "", s)
        fm = re.match(r"^(?:(\w+)\s+)?([\w.*\[\]{}]+)\s+`(.*)`$", s)
        if fm:
            fields.append(fm.groups() + (markers,))
        markers = {}
    return fields


def main():
    args = sys.argv[1:]
    tag = None
    if args[:1] == ["--tag"]:
        tag, args = args[1], args[2:]
    if len(args) != 4:
        sys.exit(__doc__)
    sources = {name: Source(path, tag) for name, path in zip(("api", "apimachinery", "apiextensions", "metrics"), args)}

    structs, enums, aliases, named, imports, protos, objects, empty = {}, {}, {}, {}, {}, {}, set(), set()
    for pkg, (repo, rel, files, _) in PACKAGES.items():
        imp = {}
        for name in files:
            raw = sources[repo].read("%s/%s" % (rel, name))
            imp.update(parse_imports(raw))
            for m in re.finditer(r"^type (\w+) struct \{(.*?)^\}", raw, flags=re.M | re.S):
                structs[(pkg, m.group(1))] = parse_struct_body(m.group(2))
            for m in re.finditer(r"^type (\w+) struct\s*\{\}", raw, flags=re.M):  # no fields (a marker)
                empty.add((pkg, m.group(1)))
            src = strip_comments(raw)
            for m in re.finditer(r"^type (\w+) (=\s*)?([\w.\[\]*]+)\s*$", src, flags=re.M):
                if m.group(2):
                    aliases[(pkg, m.group(1))] = m.group(3)
                else:
                    named[(pkg, m.group(1))] = m.group(3)
            for m in re.finditer(r"^\s*(?:const\s+)?(\w+)\s+(\w+)\s*=\s*\"([^\"]*)\"", src, flags=re.M):
                enums.setdefault((pkg, m.group(2)), []).append([m.group(1), m.group(3)])
        imports[pkg] = imp
        psrc = strip_comments(sources[repo].read("%s/generated.proto" % rel))
        for m in re.finditer(r"message (\w+) \{(.*?)\n\}", psrc, flags=re.S):
            fs = {}
            for fm in re.finditer(r"(?:(optional|repeated)\s+)?(?<![\w<.])(?=[\w.])(?!optional|repeated)([\w.<>, ]+?)\s+(\w+) = (\d+);", m.group(2)):
                fs[int(fm.group(4))] = (fm.group(3), fm.group(1) or "", fm.group(2))
            protos[(pkg, m.group(1))] = fs
    # A struct without fields matters where a field holds one (`status: {}` turns a subresource on).
    used = {(p, re.sub(r"^[*\[\]]+", "", t)) for (p, _), fields in structs.items() for _, t, _, _ in fields}
    structs.update({q: [] for q in empty & used})
    # Only string types with constants are enums; `NamespaceDefault string = "default"` is not.
    enums = {q: v for q, v in enums.items() if named.get(q) == "string"}

    def resolve(pkg, t):
        """A Go type expression as a facts-file type string."""
        if t.startswith("*"):
            return "*" + resolve(pkg, t[1:])
        if t in SCALARS:
            return SCALARS[t]
        if t.startswith("[]"):
            return "[]" + resolve(pkg, t[2:])
        m = re.match(r"map\[([\w.]+)\](.*)", t)
        if m:
            return "map[]" + resolve(pkg, m.group(2))
        if "." in t:
            alias, name = t.split(".")
            path = imports[pkg].get(alias)
            if path in OPAQUE:
                if name not in OPAQUE[path]:
                    sys.exit("unknown type %s in %s" % (t, pkg))
                return OPAQUE[path][name]
            if path not in IMPORT_PATHS:
                sys.exit("type %s of %s comes from a package not extracted (%s)" % (t, pkg, path))
            q = (IMPORT_PATHS[path], name)
        else:
            q = (pkg, t)
        if q[1] in SPECIAL.get(q[0], {}):
            return SPECIAL[q[0]][q[1]]
        if q in aliases:
            return resolve(q[0], aliases[q])
        if q in enums or q in structs:
            return "%s.%s" % q
        if q in named:
            return resolve(q[0], named[q])
        sys.exit("unknown Go type %s in package %s" % (t, pkg))

    def named_list(pkg, t):
        """The protobuf message name of a named slice type (`Verbs`, `ExtraValue`), else None."""
        t = re.sub(r"^(\*|\[\]|map\[[\w.]+\])", "", t)
        q = (pkg, t)
        if "." in t:
            alias, name = t.split(".")
            q = (IMPORT_PATHS.get(imports[pkg].get(alias)), name)
        u = named.get(q, "")
        return q[1] if u.startswith("[]") and u != "[]byte" else None

    out_packages, proto_names = [], {}
    counts = [0, 0, 0]
    for pkg, (repo, rel, files, group) in PACKAGES.items():
        out_structs = {}
        for (p, name), fields in structs.items():
            if p != pkg or name in SPECIAL.get(pkg, {}):
                continue
            out_fields = []
            for go_name, go_type, tag, markers in fields:
                jm = re.search(r'json:"([^"]*)"', tag)
                pm = re.search(r'protobuf:"([^"]*)"', tag)
                if not jm or jm.group(1).split(",")[0] == "-":
                    continue
                opts = jm.group(1).split(",")
                f = {"go": go_name or go_type.lstrip("*").split(".")[-1], "json": opts[0],
                     "type": resolve(pkg, go_type)}
                if "inline" in opts[1:] or opts[0] == "":
                    f["inline"] = True
                    f["json"] = ""
                if "omitempty" in opts[1:]:
                    f["omitempty"] = True
                if markers.get("optional"):
                    f["optional"] = True
                if "default" in markers:
                    f["default"] = markers["default"]
                # Strategic merge patch: how a list merges (by a key, retaining keys), from the Go tags.
                psm = re.search(r'patchStrategy:"([^"]*)"', tag)
                pkm = re.search(r'patchMergeKey:"([^"]*)"', tag)
                if psm:
                    f["patchStrategy"] = psm.group(1)
                if pkm:
                    f["patchMergeKey"] = pkm.group(1)
                if pm:
                    pp = pm.group(1).split(",")
                    f["proto"] = [int(pp[1]), pp[0]]
                    proto_names[(pkg, name, int(pp[1]))] = dict(o.split("=", 1) for o in pp if "=" in o).get("name")
                    # protobuf may wrap a named list (`type Verbs []string`) in a message of its own, where
                    # generated.proto says so (`Verbs verbs`, `map<string, ExtraValue>`; not `repeated
                    # ValidationRule xKubernetesValidations` of `type ValidationRules []ValidationRule`).
                    wrapper = named_list(pkg, go_type)
                    ptype = protos.get((pkg, name), {}).get(int(pp[1]), ("", "", ""))[2]
                    if wrapper and re.search(r"\b%s\b" % wrapper, ptype):
                        f["proto"].append(wrapper)
                out_fields.append(f)
            if any(f.get("inline") and f["type"] == "meta/v1.TypeMeta" for f in out_fields):
                objects.add((pkg, name))
            entry = {"fields": out_fields}
            if (pkg, name) in objects:
                entry["object"] = True
            out_structs[name] = entry
            check_proto(pkg, name, out_fields, protos, proto_names)
            counts[0] += 1
            counts[1] += len(out_fields)
        out_enums = {n: v for (p, n), v in sorted(enums.items()) if p == pkg}
        counts[2] += len(out_enums)
        out_aliases = {n: resolve(pkg, t) for (p, n), t in sorted(aliases.items()) if p == pkg}
        out_packages.append({"package": pkg, "group": group, "version": pkg.split("/")[1],
                             "structs": out_structs, "enums": out_enums, "aliases": out_aliases})

    facts = {"source": {"k8s.io/api": sources["api"].describe(),
                        "k8s.io/apimachinery": sources["apimachinery"].describe(),
                        "k8s.io/apiextensions-apiserver": sources["apiextensions"].describe(),
                        "k8s.io/metrics": sources["metrics"].describe(),
                        "generator": "scripts/kube-model/extract.py"},
             "packages": out_packages}
    write_facts(facts, sys.stdout)
    print("%d structs, %d fields, %d enums" % tuple(counts), file=sys.stderr)


def check_proto(pkg, name, fields, protos, proto_names):
    """The protobuf tags of types.go against generated.proto: the same numbers, names and shapes."""
    tagged = [f for f in fields if "proto" in f]
    if not tagged:
        return
    proto = protos.get((pkg, name))
    if proto is None:
        sys.exit("no message %s in %s generated.proto" % (name, pkg))
    if {f["proto"][0] for f in tagged} != set(proto):
        sys.exit("%s.%s: field numbers differ: types.go %s, generated.proto %s"
                 % (pkg, name, sorted(f["proto"][0] for f in tagged), sorted(proto)))
    for f in tagged:
        pname, label, ptype = proto[f["proto"][0]]
        t = f["type"].lstrip("*")
        repeated = t.startswith("[]") and len(f["proto"]) == 2
        if pname != (proto_names[(pkg, name, f["proto"][0])] or pname) or repeated != (label == "repeated") \
                or t.startswith("map[]") != ptype.startswith("map<"):
            sys.exit("%s.%s field %d: types.go %s %s, generated.proto %s %s %s"
                     % (pkg, name, f["proto"][0], f["json"], f["type"], label, ptype, pname))


def write_facts(facts, out):
    """JSON with one field or enum per line: compact, yet a changed fact is a one-line diff."""
    w = out.write
    w('{"source": %s,\n "packages": [\n' % json.dumps(facts["source"], sort_keys=True))
    for i, p in enumerate(facts["packages"]):
        w('  {"package": %s, "group": %s, "version": %s,\n' % tuple(json.dumps(p[k]) for k in ("package", "group", "version")))
        w('   "structs": {\n')
        names = list(p["structs"])
        for j, n in enumerate(names):
            s = p["structs"][n]
            w('    %s: {%s"fields": [' % (json.dumps(n), '"object": true, ' if s.get("object") else ""))
            for k, f in enumerate(s["fields"]):
                w('\n      %s%s' % (json.dumps(f), "," if k + 1 < len(s["fields"]) else ""))
            w(']}%s\n' % ("," if j + 1 < len(names) else ""))
        w('   },\n   "enums": {')
        names = list(p["enums"])
        for j, n in enumerate(names):
            w('\n    %s: %s%s' % (json.dumps(n), json.dumps(p["enums"][n]), "," if j + 1 < len(names) else ""))
        w('},\n   "aliases": %s}%s\n' % (json.dumps(p["aliases"]), "," if i + 1 < len(facts["packages"]) else ""))
    w(' ]}\n')


if __name__ == "__main__":
    main()
