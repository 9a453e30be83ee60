"""Versions the fake tools report (kept apart so `eksctl version` imports nothing heavy)."""

EKSCTL_VERSION = "0.230.0"
HELM_VERSION = "v3.19.0"
HELM_COMMIT = "3d8990f0836691f0229297773f3524598f46bda6"
