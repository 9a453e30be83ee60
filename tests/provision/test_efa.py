"""core.efa: which KV-transfer backend a worker's log shows."""

from __future__ import annotations

from dynamo_wizard.core.efa import detect_backend

PFX = "(EngineCore_DP0 pid=312) INFO 11-28 18:47:06"


def test_efa_provider() -> None:
    report = detect_backend([
        "2026-11-28 18:47:06 NIXL INFO    _api.py:363 Backend LIBFABRIC was instantiated",
        f"{PFX} [nixl_connector.py:812] NIXL backend LIBFABRIC: libfabric provider efa, 8 EFA device(s)",
    ])
    assert report.verdict == "efa" and report.efa and "provider efa" in report.evidence
    assert "EFA is in use" in report.sentence("w-0")


def test_tcp_fallback() -> None:
    report = detect_backend([
        "NIXL INFO    _api.py:363 Backend LIBFABRIC was instantiated",
        "libfabric:1:efa:core:efa_prov_info_alloc(): No EFA devices found; provider efa not available",
        f"{PFX} [nixl_connector.py:812] NIXL backend LIBFABRIC: falling back to libfabric provider tcp",
    ])
    assert report.verdict == "tcp" and not report.efa
    assert "fell back to TCP" in report.sentence()


def test_ucx_is_not_efa() -> None:
    report = detect_backend(["NIXL INFO    _api.py:361 Backend UCX was instantiated",
                             f"{PFX} NIXL backend UCX (UCX transports: tcp, cuda_copy, cuda_ipc)"])
    assert report.verdict == "ucx"
    assert "UCX" in report.sentence()


def test_libfabric_without_a_provider_line_and_nothing_at_all() -> None:
    assert detect_backend(["NIXL INFO _api.py:363 Backend LIBFABRIC was instantiated"]).verdict == \
        "libfabric-unknown-provider"
    assert detect_backend(["INFO Starting to load model", "registering provider: efa (201.0)"]).verdict == "unknown"


def test_the_latest_start_wins() -> None:
    lines = ["Backend UCX was instantiated", "--- restarted ---", "Backend LIBFABRIC was instantiated",
             "NIXL backend LIBFABRIC: libfabric provider efa, 1 EFA device(s)"]
    assert detect_backend(lines).verdict == "efa"
