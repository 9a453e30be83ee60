"""Manifest builders: the per-object functions the provisioning steps call, facts vs placeholders, sizing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_wizard.core import manifests as m
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.inventory import Zone
from dynamo_wizard.core.plan import Plan, load_plan, plan_from_dict
from dynamo_wizard.core.runbook import build_runbook

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CATALOG = load_catalog()


def example(name: str) -> Plan:
    return load_plan(EXAMPLES / name)


def with_serving(plan: Plan, **changes: Any) -> Plan:
    data = plan.to_dict()
    data["serving"].update(changes)
    return plan_from_dict(data)


def test_efa_devices_are_the_workers_share_of_the_instance() -> None:
    assert m.efa_interfaces_per_worker(CATALOG.instance_types["g7e.12xlarge"], 1) == 1  # 1 EFA, 2 GPUs
    assert m.efa_interfaces_per_worker(CATALOG.instance_types["p5.48xlarge"], 2) == 8  # 32 EFA, 8 GPUs
    assert m.efa_interfaces_per_worker(CATALOG.instance_types["p5.48xlarge"], 8) == 32
    assert m.efa_interfaces_per_worker(CATALOG.instance_types["g6e.2xlarge"], 1) == 0  # no EFA


def test_nodes_needed_follows_the_graphs_placement() -> None:
    g7e = CATALOG.instance_types["g7e.12xlarge"]
    p5 = CATALOG.instance_types["p5.48xlarge"]
    assert m.nodes_needed(example("disagg-efa.yaml"), g7e) == 2  # prefill and decode kept apart
    assert m.nodes_needed(example("disagg-p5-reserved.yaml"), p5) == 2  # 16 GPUs packed on two p5
    assert m.nodes_needed(example("agg.yaml"), CATALOG.instance_types["g6e.2xlarge"]) == 1


def test_download_memory_comes_from_the_plan_then_the_catalog() -> None:
    agg = example("agg.yaml")
    assert m.download_memory(agg, CATALOG) == "4Gi"  # Qwen3-0.6B: the guide's default
    assert m.download_memory(example("disagg-efa.yaml"), CATALOG) == "16Gi"
    data = agg.to_dict()
    data["storage"]["downloadMemory"] = "6Gi"
    assert m.download_memory(plan_from_dict(data), CATALOG) == "6Gi"


def test_eks_control_plane_zones_drop_unsupported_zone_ids() -> None:
    zones = [Zone("us-east-1a", "use1-az6", "us-east-1"), Zone("us-east-1e", "use1-az3", "us-east-1"),
             Zone("us-east-1f", "use1-az5", "us-east-1", eks_control_plane=False),
             Zone("us-east-1-bos-1a", "use1-bos1-az1", "us-east-1", opt_in_required=True)]
    assert m.eks_control_plane_zones(zones) == ("us-east-1a",)


def test_without_efs_there_is_no_cache_no_job_and_no_efs_addon() -> None:
    data = example("agg.yaml").to_dict()
    data["storage"]["efs"] = False
    plan = plan_from_dict(data)
    files = {f.name: f for f in m.render_all(plan, m.RenderContext(CATALOG))}
    assert m.FILE_EFS not in files and m.FILE_DOWNLOAD_JOB not in files
    assert "addons" not in files[m.FILE_CLUSTER].documents[0]
    graph = files[m.graph_file_name(plan)].documents[0]
    assert "pvcs" not in graph["spec"]
    for service in graph["spec"]["services"].values():
        assert "volumeMounts" not in service
    runbook = build_runbook(plan, list(files.values()), m.release_profile(plan, CATALOG))
    assert "step_efs" not in runbook and "create-file-system" not in runbook and "delete-file-system" not in runbook
    assert "step_model_download" not in runbook


def test_tensor_parallel_is_passed_when_above_one() -> None:
    plan = with_serving(example("disagg-efa.yaml"), instanceType="g7e.24xlarge",
                        prefill={"replicas": 1, "gpus": 2, "tensorParallel": 2})
    services = m.dynamo_graph(plan, CATALOG)["spec"]["services"]
    prefill = services["VllmPrefillWorker"]["extraPodSpec"]["mainContainer"]["args"]
    assert prefill[prefill.index("--tensor-parallel-size") + 1] == "2"
    assert "--tensor-parallel-size" not in services["VllmDecodeWorker"]["extraPodSpec"]["mainContainer"]["args"]
    assert services["VllmPrefillWorker"]["resources"]["requests"]["custom"] == {"vpc.amazonaws.com/efa": "1"}


def test_hostile_strings_stay_data(tmp_path: Path) -> None:
    """Values reach YAML and the runbook as data: no YAML structure or shell syntax can be injected."""
    data = example("disagg-p5-reserved.yaml").to_dict()
    # AWS tag syntax already excludes newlines, quotes and shell characters; YAML syntax and unicode remain.
    data["reservation"] = {"tags": {"team": "a: b - c", "owner": "ünïcødé @x=y+z/:"}, "fallback": "none"}
    plan = plan_from_dict(data)
    files = m.render_all(plan, m.RenderContext(CATALOG))
    nodeclass = next(f for f in files if f.name == m.FILE_RESERVED_NODECLASS)
    assert yaml.safe_load(nodeclass.text())["spec"]["capacityReservationSelectorTerms"] == [
        {"tags": {"team": "a: b - c", "owner": "ünïcødé @x=y+z/:"}}]
    runbook = build_runbook(plan, files, m.release_profile(plan, CATALOG))
    assert "ünïcødé" not in runbook  # tags live only in the JSON file the runbook applies


def test_unknown_release_or_type_is_a_plan_error_not_a_crash() -> None:
    data = example("agg.yaml").to_dict()
    data["dynamo"]["release"] = "0.1.0"
    with pytest.raises(PlanError) as caught:
        m.render_all(plan_from_dict(data), m.RenderContext(CATALOG))
    assert caught.value.problems[0].field == "dynamo.release"
    with pytest.raises(PlanError):
        m.dynamo_graph(with_serving(example("agg.yaml"), instanceType="g6e.3xlarge"), CATALOG)


def test_release_profile_drives_the_images_and_chart() -> None:
    data = example("agg.yaml").to_dict()
    data["dynamo"]["release"] = "1.0.1"
    plan = plan_from_dict(data)
    profile = m.release_profile(plan, CATALOG)
    graph = m.dynamo_graph(plan, CATALOG)
    images = {s["extraPodSpec"]["mainContainer"]["image"] for s in graph["spec"]["services"].values()}
    assert images == {"nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.0.1",
                      "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.1-efa-amd64"}
    assert m.helm_command(plan, profile, "v.yaml")[4].endswith("dynamo-platform-1.0.1.tgz")


def test_runbook_order_and_guide_fixes() -> None:
    plan = example("disagg-p5-reserved.yaml")
    files = m.render_all(plan, m.RenderContext(CATALOG))
    text = build_runbook(plan, files, m.release_profile(plan, CATALOG))
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    apply_body = text.split("\napply() {")[1].split("\n}")[0]
    order = [line.strip() for line in apply_body.splitlines() if line.strip().startswith("step_")]
    assert order == ["step_cluster", "step_node_pools", "step_reserved_capacity", "step_efs", "step_namespace",
                     "step_efs_storage", "step_platform", "step_model_download", "step_graph", "step_smoke_test"]
    assert "bin/linux/${KUBECTL_ARCH}/kubectl" in text and "darwin" not in text
    assert "kubectl create namespace" not in text and 'kubectl apply -f "$HERE/20-namespace.yaml"' in text
    assert "--creation-token" in text
    assert 'wait_until 900 "EFS mount targets to be available" mount_targets_available' in text
    cleanup = text.split("\ncleanup() {")[1]
    # Design section 2's order: graph, platform, NATS volume, node pools (incl. reserved), NodeClass, EFS, cluster.
    marks = ["delete dgd", "helm uninstall", "dynamo-platform-nats-js", "delete nodepool gpu gpu-reserved",
             "delete nodeclass gpu-reserved", "delete-mount-target", "mount_targets_gone", "delete-file-system",
             "delete-security-group", "eksctl delete cluster"]
    positions = [cleanup.index(mark) for mark in marks]
    assert positions == sorted(positions)
    assert "helm upgrade --install dynamo-platform" in text


def test_runbook_aws_queries_are_valid_jmespath() -> None:
    import re
    import shlex

    import jmespath  # botocore's query language, as the AWS CLI evaluates --query

    plan = example("agg.yaml")  # no zones in the plan: the runbook computes them
    files = m.render_all(plan, m.RenderContext(CATALOG))
    text = build_runbook(plan, files, m.release_profile(plan, CATALOG))
    queries = [shlex.split(q)[0] for q in re.findall(r"--query ('[^']*'|\S+)", text)]
    assert len(queries) >= 10
    for query in queries:
        jmespath.compile(query)
    (zone_query,) = [q for q in queries if "ZoneId" in q]
    zones = {"AvailabilityZones": [{"ZoneName": "us-east-1a", "ZoneId": "use1-az6"},
                                   {"ZoneName": "us-east-1e", "ZoneId": "use1-az3"},
                                   {"ZoneName": "us-east-1f", "ZoneId": "use1-az5"}]}
    assert jmespath.search(zone_query, zones) == ["us-east-1a", "us-east-1f"]
