"""Kubeconfig files as eksctl writes them and helm reads them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml


def kubeconfig_path(env: dict[str, str], explicit: str | None = None) -> Path:
    if explicit:
        return Path(os.path.expanduser(explicit))
    if env.get("KUBECONFIG"):
        return Path(os.path.expanduser(env["KUBECONFIG"].split(os.pathsep)[0]))
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".kube" / "config"


def read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def server_of(config: dict[str, Any], context: str | None = None) -> tuple[str | None, str | None]:
    """(server URL, bearer token) of the context (default: current-context)."""
    ctx_name = context or config.get("current-context")
    ctx = next((c.get("context") or {} for c in config.get("contexts") or [] if c.get("name") == ctx_name), None)
    if ctx is None:
        clusters = config.get("clusters") or []
        if len(clusters) == 1:
            return (clusters[0].get("cluster") or {}).get("server"), None
        return None, None
    cluster = next((c.get("cluster") or {} for c in config.get("clusters") or []
                    if c.get("name") == ctx.get("cluster")), {})
    user = next((u.get("user") or {} for u in config.get("users") or [] if u.get("name") == ctx.get("user")), {})
    return cluster.get("server"), user.get("token")


def port_of(server: str | None) -> int | None:
    if not server:
        return None
    split = urlsplit(server)
    if split.hostname not in ("127.0.0.1", "localhost"):
        return None
    return split.port


def write_cluster(path: Path, name: str, region: str, server: str, user_arn: str = "sandbox") -> str:
    """Add (or replace) the cluster's entries the way eksctl names them; returns the context name."""
    cluster_id = f"{name}.{region}.eksctl.io"
    user = f"{user_arn}@{cluster_id}"
    config = read(path) if path.exists() else {}
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    config.setdefault("preferences", {})

    def upsert(key: str, entry: dict[str, Any]) -> None:
        items = [i for i in config.get(key) or [] if i.get("name") != entry["name"]]
        items.append(entry)
        config[key] = items
    upsert("clusters", {"name": cluster_id, "cluster": {"server": server}})
    upsert("users", {"name": user, "user": {"token": f"sandbox-{name}"}})
    upsert("contexts", {"name": user, "context": {"cluster": cluster_id, "user": user}})
    config["current-context"] = user
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return user


def remove_cluster(path: Path, name: str, region: str) -> bool:
    if not path.exists():
        return False
    cluster_id = f"{name}.{region}.eksctl.io"
    config = read(path)
    contexts = [c for c in config.get("contexts") or [] if (c.get("context") or {}).get("cluster") == cluster_id]
    if not contexts:
        return False
    names = {c["name"] for c in contexts}
    users = {(c.get("context") or {}).get("user") for c in contexts}
    config["contexts"] = [c for c in config.get("contexts") or [] if c.get("name") not in names]
    config["clusters"] = [c for c in config.get("clusters") or [] if c.get("name") != cluster_id]
    config["users"] = [u for u in config.get("users") or [] if u.get("name") not in users]
    if config.get("current-context") in names:
        config["current-context"] = ""
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return True
