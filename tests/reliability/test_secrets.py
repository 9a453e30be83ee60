"""Secrets: a run with a canary HF token (typed into the TUI, then from HF_TOKEN) through apply, a failing step,
a retry, render, validate, status and cleanup. The canary reaches the cluster's Secret (checked: otherwise the
rest would prove nothing) and nothing else: no file the wizard writes, no output, no error, no log record, no
screen.

Where it may be: the simulated cluster's own Kubernetes state in the sandbox directory holds the Secret, as
etcd does on EKS. Everything else under the sandbox directory (the AWS journal, the fake tools' argv log, the
service log, pod logs) and everything under DYNAMO_WIZARD_HOME, the exports, the render output and the
temporary directory must not hold it, in clear or base64 (see world.canary_needles).
"""

from __future__ import annotations

from .world import World, _scan_tree, find_canary, svg_text


def _stage_ok(world: World, *names: str) -> None:
    for name in names:
        assert name not in world.stage_errors, f"stage {name} failed:\n{world.stage_errors[name]}"


def test_the_canary_reached_the_clusters_secret(canary_world: World) -> None:
    """The positive control: the token the user typed is the one the deployment's Secret holds."""
    _stage_ok(canary_world, "secret")
    assert canary_world.secret_value == canary_world.canary


def test_no_file_the_wizard_writes_holds_the_canary(canary_world: World) -> None:
    w = canary_world
    written = [p for p in w.home.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.jsonl" for p in written) and any(p.suffix == ".log" for p in written), \
        "the run wrote no ledger or logs: nothing was checked"
    assert w.export_dir is not None and (w.export_dir / "plan.yaml").exists(), "the TUI's export is missing"
    assert w.render_dir is not None and (w.render_dir / "runbook.sh").exists(), "render wrote nothing"
    leaks: dict[str, list[str]] = {}
    for root in (w.home, w.export_dir, w.render_dir, w.tmpdir):
        leaks.update(_scan_tree(root, w.needles))
    assert not leaks, f"the canary is in files the wizard wrote: {leaks}"
    scanned = sum(1 for root in (w.home, w.export_dir, w.render_dir, w.tmpdir) for p in root.rglob("*") if p.is_file())
    sandbox_files = sum(1 for p in w.sandbox.directory.rglob("*") if p.is_file())
    print(f"figures secrets: {scanned} files of the wizard's and {sandbox_files} of the sandbox's scanned; "
          f"{len(w.screenshots)} screen captures; {len(w.log_records)} log records; {len(w.captures)} CLI runs; "
          f"world built in {w.notes.get('seconds')} s")


def test_the_sandbox_holds_the_canary_only_in_the_clusters_secret(canary_world: World) -> None:
    _stage_ok(canary_world, "sandbox-scan-live", "sandbox-scan-end")
    assert not canary_world.sandbox_occurrences, canary_world.sandbox_occurrences


def test_no_output_or_error_holds_the_canary(canary_world: World) -> None:
    w = canary_world
    names = [c.what for c in w.captures]
    assert {"apply", "render", "validate", "status", "cleanup-1", "cleanup-2"} <= set(names), names
    for capture in w.captures:
        assert not capture.error, f"{capture.what}: a traceback escaped:\n{capture.error}"
        for stream, text in (("stdout", capture.stdout), ("stderr", capture.stderr)):
            assert not find_canary(text, w.needles), f"{capture.what} {stream}: {find_canary(text, w.needles)}"
    # The runs said something, and an error was among it (cleanup-1 stops at the failing cluster deletion).
    assert w.capture("apply").code == 0, w.capture("apply").stdout[-2000:]
    cleanup_1 = w.capture("cleanup-1")
    assert cleanup_1.code != 0 and "✖" in cleanup_1.stdout + cleanup_1.stderr, cleanup_1.stdout[-2000:]
    assert w.capture("cleanup-2").code == 0, w.capture("cleanup-2").stdout[-2000:]


def test_no_log_record_holds_the_canary(canary_world: World) -> None:
    w = canary_world
    assert w.log_records, "no log record was captured: the check saw nothing"
    leaked = [r for r in w.log_records if find_canary(r, w.needles)]
    assert not leaked, leaked[:5]


def test_the_tui_took_the_typed_token_through_a_failure_and_a_retry(canary_world: World) -> None:
    w = canary_world
    _stage_ok(w, "tui")
    assert w.notes["tui_first_state"] == "failed", w.notes
    assert w.notes["tui_final_state"] == "done", w.notes
    fired = w.sandbox.status()["faults"]["fired"]
    assert "fail-once=kube:create:secrets" in fired, fired


def test_no_screen_capture_holds_the_canary(canary_world: World) -> None:
    w = canary_world
    _stage_ok(w, "tui")
    expected = {"welcome", "region", "families", "capacity", "serving", "review", "review-files", "export-dialog",
                "review-exported", "confirm", "provision-failed", "provision-end"}
    assert expected <= set(w.screenshots), sorted(w.screenshots)
    for name, svg in w.screenshots.items():
        text = svg_text(svg)
        assert len(text) > 500, f"the {name} capture has no text to check"
        assert not find_canary(text, w.needles), f"the {name} screen shows {find_canary(text, w.needles)}"
        assert not find_canary(svg, w.needles), f"the {name} SVG holds {find_canary(svg, w.needles)}"
    # The captures are of the real screens: the failing step is named on the failure capture.
    assert "hf-secret" in svg_text(w.screenshots["provision-failed"]).lower() or \
        "token" in svg_text(w.screenshots["provision-failed"]).lower()
