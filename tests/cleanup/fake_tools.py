"""Stand-ins for eksctl and helm in the cleanup tests that run without the sandbox service: they act on
the same moto (boto3 via AWS_ENDPOINT_URL) and kmock (the kubeconfig helm is given) the test uses, print
the real tools' line shapes, and record their argv to calls.jsonl."""

from __future__ import annotations

import sys
from pathlib import Path

EKSCTL = r'''
import datetime, json, os, sys
import boto3
calls = os.environ["DW_FAKE_CALLS"]
with open(calls, "a") as f:
    f.write(json.dumps({"tool": "eksctl", "argv": sys.argv[1:]}) + "\n")
def say(icon, msg):
    print(datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S") + f" [{icon}]  " + msg, flush=True)
args = sys.argv[1:]
if args[:2] != ["delete", "cluster"]:
    print("Error: unsupported by the fake", file=sys.stderr); sys.exit(2)
name = args[args.index("--name") + 1]
region = args[args.index("--region") + 1]
eks = boto3.client("eks", region_name=region)
cfn = boto3.client("cloudformation", region_name=region)
try:
    eks.describe_cluster(name=name)
except eks.exceptions.ResourceNotFoundException:
    print(f"Error: unable to describe cluster control plane: operation error EKS: DescribeCluster, "
          f"https response error StatusCode: 404, ResourceNotFoundException: No cluster found for name: {name}.",
          file=sys.stderr)
    sys.exit(1)
say("ℹ", f'deleting EKS cluster "{name}"')
stacks = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]
          if s["StackName"].startswith(f"eksctl-{name}-") and s["StackStatus"] != "DELETE_COMPLETE"]
for stack in sorted(stacks, key=lambda s: s.endswith("-cluster")):
    say("ℹ", f'will delete stack "{stack}"')
    cfn.delete_stack(StackName=stack)
    say("ℹ", f'waiting for stack "{stack}" to get deleted')
eks.delete_cluster(name=name)
say("✔", "all cluster resources were deleted")
'''

HELM = r'''
import json, os, sys
import yaml
from kubernetes import client
calls = os.environ["DW_FAKE_CALLS"]
with open(calls, "a") as f:
    f.write(json.dumps({"tool": "helm", "argv": sys.argv[1:]}) + "\n")
args = sys.argv[1:]
if args[0] != "uninstall":
    print("Error: unsupported by the fake", file=sys.stderr); sys.exit(2)
release, ns = args[1], args[args.index("-n") + 1]
cfg = yaml.safe_load(open(args[args.index("--kubeconfig") + 1]))
conf = client.Configuration()
conf.host = cfg["clusters"][0]["cluster"]["server"]
core = client.CoreV1Api(client.ApiClient(conf))
apps = client.AppsV1Api(client.ApiClient(conf))
found = False
for s in json.loads(core.list_namespaced_secret(ns, _preload_content=False).data)["items"]:
    labels = s["metadata"].get("labels") or {}
    if labels.get("owner") == "helm" and labels.get("name") == release:
        core.delete_namespaced_secret(s["metadata"]["name"], ns)
        found = True
if not found:
    print(f"Error: uninstall: Release not loaded: {release}: release: not found", file=sys.stderr); sys.exit(1)
for d in json.loads(apps.list_namespaced_deployment(ns, _preload_content=False).data)["items"]:
    if d["metadata"]["name"].startswith(release):
        apps.delete_namespaced_deployment(d["metadata"]["name"], ns)
print(f'release "{release}" uninstalled')
'''


def install(directory: Path) -> tuple[Path, Path, Path]:
    """Write the fakes; returns (eksctl, helm, calls.jsonl)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in (("eksctl", EKSCTL), ("helm", HELM)):
        path = directory / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
        paths.append(path)
    calls = directory / "calls.jsonl"
    calls.touch()
    return paths[0], paths[1], calls
