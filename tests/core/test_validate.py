"""Schema validation: strict against the upstream CRDs, eksctl's schema and kubernetes-validate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_wizard.core import manifests as m
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.plan import Plan, load_plan
from dynamo_wizard.core.validate import coverage, find_schemas_dir, validate_documents, validate_rendered

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def p5() -> Plan:
    return load_plan(EXAMPLES / "disagg-p5-reserved.yaml")


def messages(docs: list[dict[str, Any]], schemas: Path | None) -> list[str]:
    return [str(p) for p in validate_documents([("f.yaml", d) for d in docs], schemas)]


def test_a_misspelled_field_in_each_custom_resource_is_an_error(p5: Plan, shared_reference: Path) -> None:
    catalog = load_catalog()
    graph = m.dynamo_graph(p5, catalog)
    graph["spec"]["services"]["VllmDecodeWorker"]["extraPodSpec"]["mainContainer"]["workDir"] = "/x"
    pool = m.gpu_nodepool(p5)
    pool["spec"]["template"]["spec"]["requirments"] = []
    nodeclass = m.reserved_nodeclass(p5)
    nodeclass["spec"]["capacityReservationSelectorTerms"][0]["idd"] = "cr-1"
    found = messages([graph, pool, nodeclass], shared_reference)
    assert len(found) == 3, found
    assert "spec.services.VllmDecodeWorker.extraPodSpec.mainContainer.workDir: is not a field" in found[0]
    assert "NodePool/gpu spec.template.spec.requirments: is not a field" in found[1]
    assert "capacityReservationSelectorTerms[0].idd: is not a field" in found[2]
    assert all("drop it silently" in f for f in found)


def test_wrong_types_and_values_in_custom_resources(p5: Plan, shared_reference: Path) -> None:
    graph = m.dynamo_graph(p5, load_catalog())
    graph["spec"]["services"]["VllmDecodeWorker"]["resources"]["requests"]["gpu"] = 2  # must be a string
    graph["spec"]["services"]["Frontend"]["componentType"] = "router"
    pool = m.gpu_nodepool(p5)
    pool["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
    found = messages([graph, pool], shared_reference)
    assert any("requests.gpu: 2 is not of type string" in f for f in found), found
    assert any("consolidationPolicy: 'Sometimes' is not one of" in f for f in found), found


def test_nodeclass_needs_the_derived_fragment_for_reservation_terms(p5: Plan, shared_reference: Path,
                                                                    tmp_path: Path) -> None:
    """Without the DERIVED fragment the imroc schema lacks capacityReservationSelectorTerms: strictness shows it."""
    imroc = shared_reference / "crds" / "eks" / "nodeclasses.eks.amazonaws.com.v1.schema.yaml"
    only_imroc = tmp_path / "schemas"
    only_imroc.mkdir()
    (only_imroc / "nodeclass.yaml").symlink_to(imroc)
    found = messages([m.reserved_nodeclass(p5)], only_imroc)
    assert len(found) == 1 and "capacityReservationSelectorTerms: is not a field" in found[0]
    assert messages([m.reserved_nodeclass(p5)], shared_reference) == []


def test_eksctl_config_against_its_schema(p5: Plan, shared_reference: Path) -> None:
    config = m.eksctl_cluster_config(p5)
    config["autoModeConfig"]["enable"] = True
    config["metadata"]["version"] = 1.34
    found = messages([config], shared_reference)
    assert any("autoModeConfig.enable: is not a field" in f for f in found), found
    assert any("metadata.version: 1.34 is not of type string" in f for f in found), found


def test_core_kinds_are_strict_and_report_every_error(p5: Plan) -> None:
    job = m.model_download_job(p5, load_catalog())
    job["spec"]["backofLimit"] = 3
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    job["spec"]["completions"] = "one"
    found = messages([job], None)  # kubernetes-validate needs no schemas directory
    assert len(found) == 3, found
    assert any("spec.backofLimit: is not a field" in f for f in found)
    assert any("containers[0].imagePullPolice: is not a field" in f for f in found)
    assert any("spec.completions: 'one' is not of type" in f for f in found)


def test_names_and_labels_are_checked_for_every_object(p5: Plan, shared_reference: Path) -> None:
    ns = m.namespace(p5)
    ns["metadata"]["name"] = "Not_A_Namespace"
    pool = m.gpu_nodepool(p5)
    pool["metadata"]["labels"]["bad key!"] = "x"
    pool["metadata"]["labels"]["ok"] = "a value with spaces"
    found = messages([ns, pool], shared_reference)
    assert any("metadata.name: 'Not_A_Namespace' is not a valid Kubernetes name" in f for f in found), found
    assert any("key 'bad key!'" in f for f in found), found
    assert any("value 'a value with spaces'" in f for f in found), found


def test_without_schemas_custom_resources_are_skipped_and_said_so(p5: Plan) -> None:
    graph = m.dynamo_graph(p5, load_catalog())
    graph["spec"]["typo"] = 1
    assert messages([graph], None) == []  # no CRD to check it against ...
    cover = coverage(None, "1.34")
    assert any("DynamoGraphDeployment" in s and "no schemas directory" in s for s in cover.skipped)
    assert any("kubernetes-validate --strict (Kubernetes 1.34)" in r for r in cover.ran)


def test_schemas_dir_from_env_or_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DYNAMO_WIZARD_SCHEMAS", raising=False)
    assert find_schemas_dir(None) is None
    monkeypatch.setenv("DYNAMO_WIZARD_SCHEMAS", str(tmp_path))
    assert find_schemas_dir(None) == tmp_path
    assert find_schemas_dir("/elsewhere") == Path("/elsewhere")


def test_a_missing_schemas_dir_is_a_problem(p5: Plan, tmp_path: Path) -> None:
    (problem,) = validate_documents([("f", m.namespace(p5))], tmp_path / "nope")
    assert problem.field == "schemas" and "no directory" in problem.message


def test_a_crd_in_any_layout_is_found(p5: Plan, tmp_path: Path) -> None:
    """A user's own directory: a hand-written CRD (not an upstream file) for NodePool, nothing else."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "nodepools.karpenter.sh"},
        "spec": {"group": "karpenter.sh", "names": {"kind": "NodePool", "plural": "nodepools"}, "scope": "Cluster",
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object",
                     "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                    "metadata": {"type": "object"},
                                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                             "properties": {"weight": {"type": "integer"}}}}}}}]},
    }
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "pool.yml").write_text(yaml.safe_dump(crd))
    (tmp_path / "junk.yaml").write_text("{not: [valid")
    pool = m.gpu_nodepool(p5)
    assert messages([pool], tmp_path) == []  # spec preserves unknown fields in this CRD
    pool["spec"]["weight"] = "heavy"
    pool["extra"] = True
    found = messages([pool], tmp_path)
    assert any("spec.weight: 'heavy' is not of type integer" in f for f in found), found
    assert any("NodePool/gpu extra: is not a field" in f for f in found), found
    cover = coverage(tmp_path, "1.34")
    assert any("NodePool karpenter.sh/v1 strictly against nested/pool.yml" in r for r in cover.ran)
    assert any("DynamoGraphDeployment" in s for s in cover.skipped)
    assert any("junk.yaml" in s for s in cover.skipped)


def test_kubernetes_version_comes_from_the_cluster_config(p5: Plan) -> None:
    files = m.render_all(p5, m.RenderContext(load_catalog()))
    assert validate_rendered(files, None) == []
    # A field that only exists in newer Kubernetes: PodSpec.hostnameOverride (1.34+) is rejected for 1.30.
    job = m.model_download_job(p5, load_catalog())
    job["spec"]["template"]["spec"]["hostnameOverride"] = "x"
    assert validate_documents([("j", job)], None, "1.34") == []
    old = validate_documents([("j", copy.deepcopy(job))], None, "1.30")
    assert len(old) == 1 and "hostnameOverride" in old[0].field


def test_nodeclass_json_file_round_trips(p5: Plan) -> None:
    files = {f.name: f for f in m.render_all(p5, m.RenderContext(load_catalog()))}
    nodeclass = files[m.FILE_RESERVED_NODECLASS]
    assert json.loads(nodeclass.text()) == nodeclass.documents[0]
    assert yaml.safe_load(nodeclass.text()) == nodeclass.documents[0]  # JSON is YAML for kubectl too
