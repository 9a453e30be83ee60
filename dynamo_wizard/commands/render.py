"""`dynamo-wizard render PLAN -o DIR` and `dynamo-wizard validate PLAN`.

Both check the plan's rules, render every file in memory and validate it (design section 4). `render`
then writes the files into a temporary directory beside DIR and moves it into place, so DIR is either
the complete, valid set or untouched. Exit 0 when valid; 2 with one line per problem otherwise. No input
produces a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..core.catalog import load_catalog
from ..core.errors import PlanError, Problem
from ..core.plan import load_plan
from ..core.redact import redact
from ..core.validate import CheckedRender, find_schemas_dir, render_and_check

MARKER = ".dynamo-wizard-render"
EXIT_OK = 0
EXIT_PROBLEMS = 2


def _say(line: str, err: bool = False) -> None:
    print(redact(line), file=sys.stderr if err else sys.stdout)


def _report(problems: list[Problem]) -> None:
    for p in problems:
        _say(f"{'warning' if not p.is_error else 'error'}: {p}", err=True)


def _check(args: argparse.Namespace) -> CheckedRender | int:
    """Load, check, render and validate; an exit code when it cannot go on."""
    try:
        plan = load_plan(args.plan)
    except PlanError as err:
        _report(err.problems)
        return EXIT_PROBLEMS
    schemas_dir = find_schemas_dir(getattr(args, "schemas", None))
    if schemas_dir is not None and not schemas_dir.is_dir():
        _report([Problem("--schemas", f"no directory at {schemas_dir}",
                         "give a directory of CRDs and JSON schemas (or unset DYNAMO_WIZARD_SCHEMAS)")])
        return EXIT_PROBLEMS
    try:
        return render_and_check(plan, load_catalog(), schemas_dir)
    except PlanError as err:
        _report(err.problems)
        return EXIT_PROBLEMS


def _print_coverage(checked: CheckedRender) -> None:
    for line in checked.coverage.ran:
        _say(f"checked: {line}")
    for line in checked.coverage.skipped:
        _say(f"skipped: {line}")


def run_validate(args: argparse.Namespace) -> int:
    try:
        checked = _check(args)
        if isinstance(checked, int):
            return checked
        _report(checked.warnings)
        _print_coverage(checked)
        if checked.errors:
            _report(checked.errors)
            return EXIT_PROBLEMS
        _say(f"{args.plan}: valid ({len(checked.files)} files would be rendered)")
        return EXIT_OK
    except Exception as err:  # never a traceback for any input
        _say(f"error: internal error while validating: {type(err).__name__}: {err} — please report it", err=True)
        return 1


def _write_tree(root: Path, outputs: list[tuple[str, str, bool]]) -> None:
    for rel, text, executable in outputs:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o755 if executable else 0o644)
    (root / MARKER).write_text("written by dynamo-wizard render; replaced as a whole on each render\n",
                               encoding="utf-8")


def _place(tmp: Path, target: Path) -> None:
    """Move the finished tree into place; DIR is replaced only when dynamo-wizard wrote it (or it is empty)."""
    if not target.exists():
        os.replace(tmp, target)
        return
    if not target.is_dir():
        raise PlanError([Problem("--output", f"{target} is a file", "give a directory path")])
    entries = list(target.iterdir())
    if entries and not (target / MARKER).exists():
        raise PlanError([Problem("--output", f"{target} holds files dynamo-wizard did not write",
                                 "give a new or empty directory (render replaces the whole directory)")])
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except OSError:
        os.replace(backup, target)  # put the previous render back
        raise
    shutil.rmtree(backup, ignore_errors=True)


def run_render(args: argparse.Namespace) -> int:
    tmp: Path | None = None
    try:
        checked = _check(args)
        if isinstance(checked, int):
            return checked
        _report(checked.warnings)
        if checked.errors:
            _report(checked.errors)
            _say("nothing was written", err=True)
            return EXIT_PROBLEMS
        target = Path(args.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.rendering-", dir=target.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the result is an ordinary directory
        _write_tree(tmp, checked.outputs())
        _place(tmp, target)
        tmp = None
        _print_coverage(checked)
        _say(f"wrote {target}/")
        for f in checked.files:
            _say(f"  {f.name:<44} {f.description}")
        _say(f"  {'plan.yaml':<44} the plan these files were rendered from")
        _say(f"  {'runbook.sh':<44} the same steps as plain commands: HF_TOKEN=... ./runbook.sh [cleanup]")
        return EXIT_OK
    except PlanError as err:
        _report(err.problems)
        return EXIT_PROBLEMS
    except OSError as err:
        _say(f"error: --output: cannot write {args.output}: {err.strerror or err} — choose a writable directory",
             err=True)
        return EXIT_PROBLEMS
    except Exception as err:  # never a traceback for any input
        _say(f"error: internal error while rendering: {type(err).__name__}: {err} — please report it", err=True)
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
