"""The rules of design section 4 that schemas cannot see: each one rejects what it must, with a fix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dynamo_wizard.core import manifests as m
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.errors import Problem
from dynamo_wizard.core.plan import Plan, plan_from_dict
from dynamo_wizard.core.rules import check_graph_names, check_plan, check_rendered, errors, warnings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def plan(**over: Any) -> Plan:
    data: dict[str, Any] = {
        "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": "demo", "region": "us-east-1",
        "gpu": {"families": ["g6e", "g7e"]},
        "serving": {"mode": "disagg-efa", "instanceType": "g7e.12xlarge", "model": "Qwen/Qwen3-32B"},
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    return plan_from_dict(data)


def problems_for(p: Plan) -> list[Problem]:
    return check_plan(p, load_catalog())


def only_error(p: Plan, field_prefix: str) -> Problem:
    errs = errors(problems_for(p))
    assert len(errs) == 1, [str(e) for e in errs]
    assert errs[0].field.startswith(field_prefix), str(errs[0])
    assert errs[0].fix, "every error says what to do"
    return errs[0]


def test_the_examples_have_no_errors_or_warnings() -> None:
    assert problems_for(plan()) == []


def test_family_must_be_an_exact_auto_mode_family() -> None:
    err = only_error(plan(gpu={"families": ["g7e", "p6"]}), "gpu.families[1]")
    assert "'p6'" in err.message and "p6-b200" in err.message  # the near miss is named
    assert "exactly" in err.message


def test_unknown_instance_type_names_the_familys_types() -> None:
    err = only_error(plan(serving__instanceType="g7e.96xlarge"), "serving.instanceType")
    assert "g7e.12xlarge" in err.fix and "g7e.48xlarge" in err.fix


def test_efa_mode_needs_an_efa_type() -> None:
    p = plan(serving__instanceType="g6e.2xlarge", serving__model="Qwen/Qwen3-0.6B")
    err = only_error(p, "serving.mode")
    assert "g6e.2xlarge" in err.message
    assert "disagg-tcp" in err.fix and "g7e" in err.fix


def test_tcp_mode_on_a_non_efa_type_is_fine_and_renders_cpu_kv_buffers() -> None:
    p = plan(serving__mode="disagg-tcp", serving__instanceType="g6e.2xlarge", serving__model="Qwen/Qwen3-0.6B")
    assert errors(problems_for(p)) == []
    files = m.render_all(p, m.RenderContext(load_catalog()))
    assert check_rendered(p, files, load_catalog()) == []


def test_gpu_request_cannot_exceed_the_instance() -> None:
    p = plan(serving__prefill={"replicas": 1, "gpus": 4, "tensorParallel": 4})
    err = only_error(p, "serving.prefill.gpus")
    assert "2 GPUs of a g7e.12xlarge" in err.message
    assert "g7e.24xlarge" in err.fix  # the cheapest of the family with 4 GPUs


def test_tensor_parallel_above_gpus_is_rejected_by_the_plan_itself() -> None:
    from dynamo_wizard.core.errors import PlanError

    with pytest.raises(PlanError) as caught:
        plan(serving__decode={"gpus": 1, "tensorParallel": 2})
    assert any("tensorParallel" in line for line in caught.value.lines())


def test_idle_gpus_are_a_warning_not_an_error() -> None:
    p = plan(serving__instanceType="p5.48xlarge", gpu={"families": ["p5"]},
             serving__decode={"gpus": 2, "tensorParallel": 1})
    found = problems_for(p)
    assert errors(found) == []
    (warn,) = warnings(found)
    assert warn.field == "serving.decode.tensorParallel" and "idle" in warn.message


def test_model_must_fit_the_gpu_memory_with_a_fix_on_the_same_type() -> None:
    # Qwen3-32B needs ~72 GiB; one L40S has ~45 GiB; g6e.12xlarge has 4 of them.
    p = plan(serving__mode="disagg-tcp", serving__instanceType="g6e.12xlarge")
    errs = errors(problems_for(p))
    assert {e.field for e in errs} == {"serving.prefill.tensorParallel", "serving.decode.tensorParallel"}
    assert all("set gpus and tensorParallel to 2 on g6e.12xlarge" == e.fix for e in errs)


def test_model_fit_fix_names_another_type_when_the_instance_is_too_small() -> None:
    p = plan(serving__mode="agg", serving__instanceType="g6e.2xlarge", serving__model="Qwen/Qwen3-32B")
    err = only_error(p, "serving.worker.tensorParallel")
    assert "g7e" in err.fix  # a g7e type (96 GiB per GPU) in the plan's families fits it
    assert "use serving.instanceType" in err.fix


def test_unknown_model_is_allowed_with_a_warning() -> None:
    p = plan(serving__model="my-org/my-finetune")
    found = problems_for(p)
    assert errors(found) == []
    assert any(w.field == "serving.model" and "not in the catalog" in w.message for w in warnings(found))
    job = m.model_download_job(p, load_catalog())
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "16Gi"
    assert "--revision" not in job["spec"]["template"]["spec"]["containers"][0]["args"][0]


def test_download_memory_must_fit_the_model() -> None:
    err = only_error(plan(storage={"downloadMemory": "4Gi"}), "storage.downloadMemory")
    assert "16Gi" in err.message and "xetHighPerformance" in err.fix
    # With hf-xet's buffers capped, 8Gi is enough for the same model.
    assert errors(problems_for(plan(storage={"downloadMemory": "8Gi", "xetHighPerformance": False}))) == []
    assert errors(problems_for(plan(storage={"downloadMemory": "2048Gi"})))


def test_capped_xet_sizes_the_request_down_and_sets_the_env() -> None:
    p = plan(serving__model="deepseek-ai/DeepSeek-R1", serving__instanceType="p5e.48xlarge",
             gpu={"families": ["p5e"]}, storage={"xetHighPerformance": False},
             serving__prefill={"gpus": 8, "tensorParallel": 8}, serving__decode={"gpus": 8, "tensorParallel": 8})
    container = m.model_download_job(p, load_catalog())["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["memory"] == "8Gi"
    assert {"name": "HF_XET_HIGH_PERFORMANCE", "value": "0"} in container["env"]


def test_release_must_be_known() -> None:
    err = only_error(plan(dynamo={"release": "9.9.9"}), "dynamo.release")
    assert "1.0.0" in err.fix


def test_one_zone_is_not_enough_for_eks() -> None:
    only_error(plan(zones=["us-east-1a"]), "zones")


def test_kubernetes_version_too_old_for_auto_mode() -> None:
    only_error(plan(cluster={"kubernetesVersion": "1.28"}), "cluster.kubernetesVersion")


def test_privileged_outside_efa_is_a_warning() -> None:
    p = plan(serving__mode="agg", serving__instanceType="g7e.2xlarge", serving__privileged=True)
    assert any(w.field == "serving.privileged" for w in warnings(problems_for(p)))


def test_graph_names_must_be_unique_per_cluster_and_namespace() -> None:
    a = plan(deployment="one", cluster={"name": "shared"}, serving__graphName="graph")
    b = plan(deployment="two", cluster={"name": "shared"}, serving__graphName="graph")
    c = plan(deployment="three", cluster={"name": "other"}, serving__graphName="graph")
    (err,) = check_graph_names([a, b, c])
    assert "'graph'" in err.message and "'one'" in err.message
    # Default names differ per mode: the guide's three disagg files all used vllm-disagg.
    efa = plan(deployment="x", cluster={"name": "shared"})
    tcp = plan(deployment="x", cluster={"name": "shared"}, serving__mode="disagg-tcp")
    assert check_graph_names([efa, tcp]) == []


def test_long_default_graph_names_stay_within_the_operator_limit() -> None:
    p = plan(deployment="a" * 31)
    assert len(p.graph_name) <= 36 and p.graph_name.endswith("-efa")
    assert problems_for(p) == []


# Rendered-object rules ----------------------------------------------------------------------------


def _files(p: Plan) -> list[m.RenderedFile]:
    return m.render_all(p, m.RenderContext(load_catalog()))


def _replace_graph(files: list[m.RenderedFile], graph: dict[str, Any]) -> list[m.RenderedFile]:
    return [f if f.documents[0].get("kind") != "DynamoGraphDeployment" else m.RenderedFile(f.name, (graph,), "")
            for f in files]


def test_rendered_rules_catch_a_tcp_graph_without_cpu_buffers() -> None:
    p = plan(serving__mode="disagg-tcp", serving__instanceType="g6e.2xlarge", serving__model="Qwen/Qwen3-0.6B")
    files = _files(p)
    graph = m.dynamo_graph(p, load_catalog())
    args = graph["spec"]["services"]["VllmPrefillWorker"]["extraPodSpec"]["mainContainer"]["args"]
    i = args.index("--kv-transfer-config") + 1
    args[i] = args[i].replace('"kv_buffer_device":"cpu",', "")
    found = check_rendered(p, _replace_graph(files, graph), load_catalog())
    assert [f.message for f in found] == ["TCP disaggregation without kv_buffer_device cpu"]


def test_rendered_rules_catch_efa_devices_over_tcp_and_a_missing_zone_affinity() -> None:
    p = plan(serving__mode="disagg-tcp", serving__instanceType="g7e.12xlarge")
    graph = m.dynamo_graph(p, load_catalog())
    worker = graph["spec"]["services"]["VllmDecodeWorker"]
    worker["resources"]["requests"]["custom"] = {"vpc.amazonaws.com/efa": "1"}
    del worker["extraPodSpec"]["affinity"]["podAffinity"]
    messages = {f.message for f in check_rendered(p, _replace_graph(_files(p), graph), load_catalog())}
    assert "requests EFA devices on a type or mode without EFA" in messages
    assert "disaggregated workers are not kept in one zone" in messages


def test_rendered_rules_catch_hf_home_not_at_the_cache_mount() -> None:
    p = plan()
    graph = m.dynamo_graph(p, load_catalog())
    graph["spec"]["services"]["VllmDecodeWorker"]["extraPodSpec"]["mainContainer"]["env"] = [
        {"name": "HF_HOME", "value": "/root/.cache"}]
    (found,) = check_rendered(p, _replace_graph(_files(p), graph), load_catalog())
    assert "HF_HOME" in found.message
