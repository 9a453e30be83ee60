"""Subcommand bodies, one module per area (imported lazily by cli.py)."""
