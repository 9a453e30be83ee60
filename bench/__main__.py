"""`python -m bench [--json] [--only NAME[,NAME]] [--runs N]` — every benchmark, as a table or JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback

from .result import Result

# module name -> what it measures (order = table order)
BENCHMARKS = {
    "cold_start": "cold start to the first interactive screen vs a bare Textual app",
    "discovery": "discovery of regions x families x zones + reservations + quotas vs the sequential AWS CLI loop",
    "log_pane": "log pane ingest vs a bare Textual Log, key latency under a 10,000 lines/s flood",
    "pod_table": "pod table with 2,000 pods and 1,000 events/s vs a bare DataTable",
    "serving_time": "confirm-to-serving under the step-duration model vs the guide's sequential order",
    "memory": "peak memory of a full sandbox apply",
}


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v != v:  # nan
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--json", action="store_true")
    p.add_argument("--only", default=None, help="comma-separated benchmark names: " + ", ".join(BENCHMARKS))
    p.add_argument("--runs", type=int, default=5, help="runs per figure (the median is reported)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    results: list[Result] = []
    errors: dict[str, str] = {}
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            results.extend(mod.run(runs=args.runs))
        except Exception as err:  # a benchmark that cannot run reports why; it never fails the others
            errors[name] = f"{type(err).__name__}: {err}"
            if not args.json:
                traceback.print_exc()
        if not args.json:
            print(f"[{name}] {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if args.json:
        print(json.dumps({"results": [r.as_dict() for r in results], "errors": errors}, indent=2))
        return 0
    header = ["benchmark", "ours", "anchor", "ratio", "target", "met", "note"]
    rows = [[r.name, f"{_fmt(r.ours)} {r.unit}", f"{_fmt(r.anchor)} {r.unit}" if r.anchor is not None else "-",
             f"{r.ratio:.3f}×" if r.ratio is not None else "-", r.target,
             {True: "yes", False: "NO", None: "-"}[r.met], r.note] for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    for name, err in errors.items():
        print(f"{name}: could not run: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
