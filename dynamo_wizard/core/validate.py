"""Validation of rendered files against the upstream schemas (design section 4).

- The eksctl ClusterConfig against eksctl's JSON schema (Draft-07).
- Core Kubernetes kinds with kubernetes-validate, strict, for the plan's Kubernetes version.
- Custom resources (DynamoGraphDeployment, NodePool, NodeClass) against their CRDs' openAPIV3Schema,
  strictly: an object that declares neither `additionalProperties` nor
  `x-kubernetes-preserve-unknown-fields` is closed, so a field the schema does not declare is an error
  (the API server would prune it silently, and a typo would pass every other check and do nothing).
- Object metadata (names, label keys and values) for every Kubernetes object, which neither a CRD
  schema nor kubernetes-validate checks.

The upstream schemas are not shipped with dynamo-wizard. They are found in a directory given with
`--schemas DIR` or `DYNAMO_WIZARD_SCHEMAS`; without one, the eksctl and CRD checks are skipped and
`coverage()` says so. A schemas directory may be laid out in any way: every `*.json`, `*.yaml` and `*.yml`
under it is read, and recognised as
- a CustomResourceDefinition (each served version's openAPIV3Schema),
- a JSON schema naming its kind in `x-kubernetes-group-version-kind` (e.g. a schema dumped from a cluster),
- eksctl's ClusterConfig schema (`definitions.ClusterConfig`),
- `nodeclass*.DERIVED.yaml`: extra NodeClass `.spec` properties, merged into the NodeClass schema.
When two files define the same kind and version, the first in path order wins.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions, schema_contents
from referencing import Registry, Resource

from .errors import Problem

SCHEMAS_ENV = "DYNAMO_WIZARD_SCHEMAS"
CUSTOM_KINDS = {
    ("nvidia.com/v1alpha1", "DynamoGraphDeployment"),
    ("karpenter.sh/v1", "NodePool"),
    ("eks.amazonaws.com/v1", "NodeClass"),
}
NOT_KUBERNETES = {("eksctl.io/v1alpha5", "ClusterConfig"), ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
# Files read before parsing only if their kind is one we validate (CRDs of other kinds can be ~1 MB each).
_NAMES_KIND_RE = re.compile(r"^\s+kind:\s*['\"]?(\w+)['\"]?\s*$", re.MULTILINE)
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

try:  # libyaml is ~20x faster on the ~1 MB CRD files
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


@dataclass
class SchemaSet:
    """The schemas found in one directory."""

    root: Path
    eksctl: dict[str, Any] | None = None
    custom: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # closed JSON schemas
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Coverage:
    """Which checks ran and which were skipped (and why), for the user to read."""

    ran: tuple[str, ...]
    skipped: tuple[str, ...]


# Finding and loading schemas ----------------------------------------------------------------------


def find_schemas_dir(explicit: str | Path | None = None) -> Path | None:
    """`--schemas DIR`, else $DYNAMO_WIZARD_SCHEMAS, else None (schema checks skipped)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(SCHEMAS_ENV)
    return Path(env) if env else None


def _close(node: Any, *, root: bool = False) -> Any:
    """A copy of an openAPIV3Schema as a JSON schema in which undeclared fields are errors."""
    if isinstance(node, list):
        return [_close(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions", "$defs"):
            out[key] = {k: _close(v) for k, v in value.items()} if isinstance(value, dict) else value
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _close(value)
        else:
            out[key] = value
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("x-kubernetes-embedded-resource") and "properties" in out:
        for k in ("apiVersion", "kind"):
            out["properties"].setdefault(k, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    if (out.get("type") == "object" and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if root:
        # ObjectMeta is validated by the API server itself, not by the CRD: check it with our own rules.
        props = out.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
        out.pop("additionalProperties", None)
        out["additionalProperties"] = False
        props.setdefault("status", {"type": "object"})
    return out


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _wanted_kinds() -> set[str]:
    return {kind for _, kind in CUSTOM_KINDS}


def _read_docs(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


@functools.lru_cache(maxsize=8)
def _load_schema_set_cached(root_text: str, stamp: float) -> SchemaSet:
    root = Path(root_text)
    found = SchemaSet(root=root)
    fragments: list[dict[str, Any]] = []
    raw: dict[tuple[str, str], dict[str, Any]] = {}
    files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml", ".yml")),
                   key=lambda p: p.relative_to(root).parts)
    for path in files:
        rel = str(path.relative_to(root))
        try:
            if path.suffix != ".json" and path.stat().st_size > 64_000:
                # Skip big CRDs of kinds we never validate without parsing them.
                head = path.read_text(encoding="utf-8")
                kinds = set(_NAMES_KIND_RE.findall(head))
                if not kinds & _wanted_kinds():
                    continue
            docs = _read_docs(path)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
            found.notes.append(f"{rel}: not readable as JSON/YAML ({type(err).__name__}); ignored")
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            if "DERIVED" in path.name and path.name.lower().startswith("nodeclass"):
                fragments.append(doc)
            elif doc.get("kind") == "CustomResourceDefinition":
                spec = doc.get("spec") or {}
                group = spec.get("group")
                kind = (spec.get("names") or {}).get("kind")
                for version in spec.get("versions") or []:
                    schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
                    if group and kind and isinstance(schema, dict) and version.get("served", True):
                        key = (f"{group}/{version.get('name')}", kind)
                        if key not in raw:
                            raw[key] = schema
                            found.sources[key] = rel
            elif isinstance(doc.get("definitions"), dict) and "ClusterConfig" in doc["definitions"]:
                if found.eksctl is None:
                    found.eksctl = doc
                    found.sources[("eksctl.io/v1alpha5", "ClusterConfig")] = rel
            elif isinstance(doc.get("x-kubernetes-group-version-kind"), list):
                for gvk in doc["x-kubernetes-group-version-kind"]:
                    group, version, kind = gvk.get("group", ""), gvk.get("version"), gvk.get("kind")
                    key = (f"{group}/{version}" if group else str(version), str(kind))
                    if key not in raw:
                        raw[key] = doc
                        found.sources[key] = rel
    nodeclass_key = ("eks.amazonaws.com/v1", "NodeClass")
    if fragments and nodeclass_key in raw:
        schema = copy.deepcopy(raw[nodeclass_key])
        spec_schema = schema.setdefault("properties", {}).setdefault("spec", {"type": "object"})
        for fragment in fragments:
            spec_schema["properties"] = _deep_merge(spec_schema.get("properties", {}), fragment.get("properties", {}))
        raw[nodeclass_key] = schema
        found.sources[nodeclass_key] += " + DERIVED fragment"
    for key, schema in raw.items():
        if key in CUSTOM_KINDS:
            found.custom[key] = _close(schema, root=True)
    return found


def load_schema_set(root: Path) -> SchemaSet:
    stamp = max((p.stat().st_mtime for p in root.rglob("*") if p.is_file()), default=0.0)
    return _load_schema_set_cached(str(root.resolve()), stamp)


def _validator_for(schema: dict[str, Any], draft7: bool = False) -> Any:
    """A validator per schema object (schemas live as long as their cached SchemaSet)."""
    key = id(schema)
    cached = _VALIDATORS.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]
    cls = jsonschema.Draft7Validator if draft7 else jsonschema.Draft202012Validator
    validator = cls(schema)
    _VALIDATORS[key] = (schema, validator)
    return validator


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


@functools.lru_cache(maxsize=1)
def _schema_versions() -> dict[str, str]:
    """'1.34' -> '1.34.0': the schema directories kubernetes-validate bundles."""
    return {".".join(v.split(".")[:2]): v for v in all_versions()}


@functools.lru_cache(maxsize=4)
def _core_definitions(schema_dir: str, version: str) -> Any:
    return Resource.from_contents(schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version))


@functools.lru_cache(maxsize=128)
def _core_validator(version: str, api_version: str, kind: str) -> Any:
    """A strict validator for a core kind from kubernetes-validate's bundled schemas (built once, reused),
    or None when the kind has no bundled schema. Same schemas and resolution as kubernetes_validate.validate,
    but cached, and reporting every error instead of the first."""
    full = _schema_versions()[version]
    schema_dir = f"v{full}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ Registry()
    registry = _core_definitions(schema_dir, version) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


# Messages -----------------------------------------------------------------------------------------


def _path(error: jsonschema.ValidationError) -> str:
    parts: list[str] = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: jsonschema.ValidationError) -> tuple[str, str, str]:
    """(path, message, fix) for one schema error, naming the field, the value and what to do."""
    path = _path(error)
    if error.validator == "additionalProperties" and error.validator_value is False:
        declared = set((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in (error.instance if isinstance(error.instance, dict) else {}) if k not in declared)
        where = f"{path}." if path else ""
        names = ", ".join(f"{where}{k}" for k in extra) or path
        return names, "is not a field of the schema (the API server would drop it silently)", \
            "remove it or fix its spelling"
    if error.validator == "required":
        return path or "(top level)", error.message, "add the missing field"
    if error.validator == "enum":
        return path, f"{_short(error.instance)} is not one of {error.validator_value}", "use one of the allowed values"
    if error.validator == "type":
        return path, f"{_short(error.instance)} is not of type {error.validator_value}", \
            f"give a value of type {error.validator_value}"
    if error.validator == "pattern":
        return path, f"{_short(error.instance)} does not match {error.validator_value}", "fix the value's format"
    return path, error.message if len(error.message) <= 200 else error.message[:197] + "...", "fix the value"


def _object_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{doc.get('kind', '?')}/{name if isinstance(name, str) else '?'}"


# Individual validators ----------------------------------------------------------------------------


def _schema_problems(validator: Any, doc: dict[str, Any], where: str, limit: int = 20) -> list[Problem]:
    problems: list[Problem] = []
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors[:limit]:
        path, message, fix = _describe(error)
        problems.append(Problem(f"{where} {path}".rstrip(), message, fix))
    if len(errors) > limit:
        problems.append(Problem(where, f"{len(errors) - limit} more schema errors", "fix the ones above first"))
    return problems


def _check_metadata(doc: dict[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return [Problem(where, "has no metadata", "add metadata.name")]
    name = meta.get("name")
    kind = doc.get("kind")
    if not isinstance(name, str) or not name:
        problems.append(Problem(f"{where} metadata.name", "is missing", "name the object"))
    else:
        dns_ok = _DNS_LABEL_RE.fullmatch(name) if kind == "Namespace" else _DNS_SUBDOMAIN_RE.fullmatch(name)
        limit = 63 if kind == "Namespace" else 253
        if not dns_ok or len(name) > limit:
            problems.append(Problem(f"{where} metadata.name", f"{_short(name)} is not a valid Kubernetes name",
                                    "use lowercase letters, digits and '-'"))
    ns = meta.get("namespace")
    if ns is not None and (not isinstance(ns, str) or not _DNS_LABEL_RE.fullmatch(ns) or len(ns) > 63):
        problems.append(Problem(f"{where} metadata.namespace", f"{_short(ns)} is not a valid namespace",
                                "use lowercase letters, digits and '-'"))
    for kind_of_map in ("labels", "annotations"):
        mapping = meta.get(kind_of_map)
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            problems.append(Problem(f"{where} metadata.{kind_of_map}", "is not a mapping", "use key: value pairs"))
            continue
        for key, value in mapping.items():
            if not isinstance(key, str) or not isinstance(value, str):
                problems.append(Problem(f"{where} metadata.{kind_of_map}", f"{_short(key)}: {_short(value)} is not "
                                        "a string pair", "quote the value"))
                continue
            prefix, _, label_name = key.rpartition("/")
            key_ok = bool(_LABEL_NAME_RE.fullmatch(label_name)) and len(label_name) <= 63 and (
                not prefix or (bool(_DNS_SUBDOMAIN_RE.fullmatch(prefix)) and len(prefix) <= 253))
            if not key_ok:
                problems.append(Problem(f"{where} metadata.{kind_of_map}", f"key {_short(key)} is not a valid "
                                        "qualified name", "use [prefix/]name with letters, digits, '-', '_', '.'"))
            if kind_of_map == "labels" and (len(value) > 63 or not _LABEL_VALUE_RE.fullmatch(value)):
                problems.append(Problem(f"{where} metadata.labels", f"value {_short(value)} of {key} is not a valid "
                                        "label value", "at most 63 letters, digits, '-', '_', '.'"))
    return problems


def _kubernetes_version(version: str | None) -> tuple[str, str | None]:
    """The kubernetes-validate schema version to use, and a note when it is not the plan's own."""
    supported = sorted({".".join(v.split(".")[:2]) for v in all_versions()}, key=lambda v: tuple(map(int, v.split("."))))
    wanted = version or supported[-1]
    try:
        wanted_t = tuple(map(int, wanted.split(".")[:2]))
    except ValueError:
        return supported[-1], f"Kubernetes version {wanted!r} is not a version; validated with {supported[-1]}"
    candidates = [v for v in supported if tuple(map(int, v.split("."))) <= wanted_t]
    if not candidates:
        return supported[0], f"no Kubernetes {wanted} schemas; validated with {supported[0]}"
    chosen = candidates[-1]
    if chosen != wanted:
        return chosen, f"no Kubernetes {wanted} schemas in kubernetes-validate; validated with {chosen}"
    return chosen, None


def _check_kustomization(doc: dict[str, Any], where: str, file_name: str, names: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    allowed = {"apiVersion", "kind", "resources", "patches", "namespace", "labels", "commonLabels"}
    for key in doc:
        if key not in allowed:
            problems.append(Problem(f"{where} {key}", "is not a field dynamo-wizard's kustomizations use",
                                    "remove it"))
    base = file_name.rsplit("/", 1)[0] + "/" if "/" in file_name else ""
    for resource in doc.get("resources") or []:
        if not isinstance(resource, str) or f"{base}{resource}" not in names:
            problems.append(Problem(f"{where} resources", f"{_short(resource)} is not a rendered file beside it",
                                    "render again; this is a bug in dynamo-wizard"))
    for i, patch in enumerate(doc.get("patches") or []):
        if not isinstance(patch, dict) or not isinstance(patch.get("patch"), str) or not isinstance(
                patch.get("target"), dict):
            problems.append(Problem(f"{where} patches[{i}]", "needs a target and a patch", "render again"))
            continue
        try:
            parsed = yaml.safe_load(patch["patch"])
        except yaml.YAMLError:
            problems.append(Problem(f"{where} patches[{i}].patch", "is not valid YAML", "render again"))
            continue
        if not isinstance(parsed, dict) or parsed.get("kind") != patch["target"].get("kind"):
            problems.append(Problem(f"{where} patches[{i}].patch", "does not patch its target's kind", "render again"))
    return problems


# The entry points ---------------------------------------------------------------------------------


def validate_documents(named_docs: Iterable[tuple[str, Any]], schemas_dir: Path | None,
                       kubernetes_version: str | None = None) -> list[Problem]:
    """Validate (file name, document) pairs. See `validate_rendered`."""
    named_docs = list(named_docs)
    problems: list[Problem] = []
    schema_set: SchemaSet | None = None
    if schemas_dir is not None:
        if not schemas_dir.is_dir():
            return [Problem("schemas", f"no directory at {schemas_dir}",
                            f"give --schemas (or {SCHEMAS_ENV}) a directory of CRDs and JSON schemas")]
        schema_set = load_schema_set(schemas_dir)
    if kubernetes_version is None:
        for _, doc in named_docs:
            if isinstance(doc, dict) and doc.get("kind") == "ClusterConfig":
                version = (doc.get("metadata") or {}).get("version")
                kubernetes_version = version if isinstance(version, str) else None
    k8s_version, _ = _kubernetes_version(kubernetes_version)
    names = {n for n, _ in named_docs}
    for file_name, doc in named_docs:
        if not isinstance(doc, dict):
            problems.append(Problem(file_name, f"a document is a {type(doc).__name__}, not an object",
                                    "render again; this is a bug in dynamo-wizard"))
            continue
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        where = f"{file_name}: {_object_name(doc)}"
        key = (str(api_version), str(kind))
        if key == ("eksctl.io/v1alpha5", "ClusterConfig"):
            if schema_set is not None and schema_set.eksctl is not None:
                problems += _schema_problems(_validator_for(schema_set.eksctl, draft7=True), doc, where)
            continue
        if key == ("kustomize.config.k8s.io/v1beta1", "Kustomization"):
            problems += _check_kustomization(doc, where, file_name, names)
            continue
        if api_version is None and kind is None:
            continue  # a values file (helm), not a Kubernetes object
        problems += _check_metadata(doc, where)
        if key in CUSTOM_KINDS:
            if schema_set is not None and key in schema_set.custom:
                problems += _schema_problems(_validator_for(schema_set.custom[key]), doc, where)
            continue
        if not isinstance(api_version, str) or not isinstance(kind, str):
            problems.append(Problem(where, "has no apiVersion or kind", "render again; this is a bug"))
            continue
        try:
            validator = _core_validator(k8s_version, api_version, kind)
        except (kubernetes_validate.utils.InvalidSchemaError, kubernetes_validate.utils.VersionNotSupportedError,
                KeyError, ValueError) as err:
            problems.append(Problem(where, f"cannot be validated: {err}", "check apiVersion and kind"))
            continue
        if validator is None:
            problems.append(Problem(where, f"no schema for {kind} {api_version} in Kubernetes {k8s_version}",
                                    "use a kind and apiVersion the cluster serves"))
            continue
        problems += _schema_problems(validator, doc, where)
    return problems


def validate_rendered(files: Sequence[Any], schemas_dir: Path | None,
                      kubernetes_version: str | None = None) -> list[Problem]:
    """Every document of the rendered files against its schema; one Problem per error found.

    `files` are `manifests.RenderedFile`s (anything with `.name` and `.documents`). Without `schemas_dir`
    the eksctl and CRD checks are skipped (see `coverage`); metadata and core kinds are always checked.
    The Kubernetes version defaults to the ClusterConfig's `metadata.version`.
    """
    return validate_documents(((f.name, d) for f in files for d in f.documents), schemas_dir, kubernetes_version)


def coverage(schemas_dir: Path | None, kubernetes_version: str | None = None) -> Coverage:
    """What `validate_rendered` checks with this schemas directory, and what it skips."""
    k8s_version, note = _kubernetes_version(kubernetes_version)
    ran = [f"core kinds with kubernetes-validate --strict (Kubernetes {k8s_version})",
           "object names and labels", "the plan rules (design section 4)"]
    skipped: list[str] = []
    if note:
        ran[0] += f" [{note}]"
    if schemas_dir is None:
        skipped.append(f"eksctl ClusterConfig and custom resources (DynamoGraphDeployment, NodePool, NodeClass): "
                       f"no schemas directory (give --schemas DIR or set {SCHEMAS_ENV})")
        return Coverage(tuple(ran), tuple(skipped))
    if not schemas_dir.is_dir():
        skipped.append(f"eksctl and CRD schemas: {schemas_dir} is not a directory")
        return Coverage(tuple(ran), tuple(skipped))
    schema_set = load_schema_set(schemas_dir)
    if schema_set.eksctl is not None:
        ran.append(f"eksctl ClusterConfig against {schema_set.sources[('eksctl.io/v1alpha5', 'ClusterConfig')]}")
    else:
        skipped.append(f"eksctl ClusterConfig: no eksctl JSON schema under {schemas_dir}")
    for key in sorted(CUSTOM_KINDS, key=lambda k: k[1]):
        if key in schema_set.custom:
            ran.append(f"{key[1]} {key[0]} strictly against {schema_set.sources[key]}")
        else:
            skipped.append(f"{key[1]} {key[0]}: no CRD or schema for it under {schemas_dir}")
    skipped.append("CEL rules (x-kubernetes-validations) of the CRDs: not evaluated offline")
    return Coverage(tuple(ran), tuple(skipped + schema_set.notes))


# Render and check, in one call (the render/validate commands and the review screen) --------------


@dataclass(frozen=True)
class CheckedRender:
    """A plan's rendered files with everything known to be wrong with them (errors and warnings)."""

    files: tuple[Any, ...]  # manifests.RenderedFile, in apply order; empty when the plan has errors
    runbook: str
    plan_yaml: str
    problems: tuple[Problem, ...]
    coverage: Coverage

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def outputs(self) -> list[tuple[str, str, bool]]:
        """(relative path, text, executable) of every file `render` writes."""
        out = [(f.name, f.text(), False) for f in self.files]
        if self.files:
            out.append(("plan.yaml", self.plan_yaml, False))
            out.append(("runbook.sh", self.runbook, True))
        return out


def render_and_check(plan: Any, catalog: Any, schemas_dir: Path | None, facts: Any = None) -> CheckedRender:
    """The plan rules, then (when they pass) every file rendered and validated, and the runbook."""
    from . import manifests, rules, runbook  # here: manifests and rules do not depend on this module

    version = plan.cluster.kubernetes_version
    cover = coverage(schemas_dir, version)
    problems = list(rules.check_plan(plan, catalog))
    if any(p.is_error for p in problems):
        return CheckedRender((), "", plan.to_yaml(), tuple(problems), cover)
    ctx = manifests.RenderContext(catalog, facts or manifests.ClusterFacts())
    files = manifests.render_all(plan, ctx)
    problems += validate_rendered(files, schemas_dir, version)
    problems += rules.check_rendered(plan, files, catalog)
    text = runbook.build_runbook(plan, files, manifests.release_profile(plan, catalog))
    if any(p.is_error for p in problems):
        return CheckedRender((), "", plan.to_yaml(), tuple(problems), cover)
    return CheckedRender(tuple(files), text, plan.to_yaml(), tuple(problems), cover)
