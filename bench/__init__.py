"""dynamo-wizard benchmarks: each figure is compared with its anchor measured in the same run.

Run `python -m bench` (a table) or `python -m bench --json`. Benchmarks never fail CI; they report.
"""
