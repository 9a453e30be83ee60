"""Help for each screen (`?`): what the screen asks, why it matters, and the keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

COMMON_KEYS = """
**Keys everywhere:** `Enter` accepts what is highlighted and goes on · `Esc` goes back (or clears a filter) ·
`Tab` moves between parts of the screen · type letters to filter a list · `?` this help ·
`Ctrl+P` command palette (export, log folder, cleanup) · `Ctrl+R` read AWS again ·
`Ctrl+Q` quit (the answers you accepted are kept; starting again offers to continue).
"""

HELP: dict[str, str] = {
    "welcome": """
# Welcome

Checks who you are in AWS (STS `GetCallerIdentity`), which tools are installed (`eksctl`, `helm`), and which
deployments this machine has created before (from their ledgers).

- **Continue your plan** — the wizard keeps your answers as you go; quitting and starting again offers this.
- **Plan a new deployment** — start from the defaults (us-east-1, g6e.2xlarge, aggregated, Qwen/Qwen3-0.6B).
- **Resume / clean up** — a deployment found in a ledger: continue provisioning it, or delete everything it created.
- **Sandbox** — the whole flow against a simulated AWS and cluster on this machine; nothing is billed.
- **Plan only** — no AWS account needed; nothing is checked against AWS, the plan can be applied later.

The deployment name becomes the cluster name and tags every resource (`dynamo-wizard/deployment=<name>`).
""",
    "region": """
# Region

Regions ranked by how many of the GPU families you want are offered **in a single zone** (what a
disaggregated graph needs: EFA traffic does not cross zones), then in the region, then by your GPU quota.

- **G quota / P quota** — your account's on-demand vCPU quota for G/VT instances and for P instances.
- **Zones** — the cluster's zones. Zone ids where EKS has no control plane (e.g. `use1-az3`) and opt-in
  zones are left out, as the guide does.
- A region that cannot work (no wanted family, no quota, fewer than two zones) stays in the list with the reason.
""",
    "families": """
# Instances

Every GPU type of the exact EKS Auto Mode families (`g5 g6 g6e g7e p4d p4de p5 p5e p5en p6-b200`), with the GPU
model, GPUs and GPU memory per instance, EFA, the cluster zones that offer it and the on-demand price.

- `Enter` picks the highlighted type for the workers; its family goes into the GPU NodePool.
- `Space` adds (or removes) the highlighted row's family to the NodePool as well, so Auto Mode may use it.
- Types that are not offered in your zones, or that your vCPU quota cannot start, say so.
- Disaggregated serving over EFA needs an EFA-capable type (usually 8xlarge and larger).
""",
    "capacity": """
# Capacity

Use On-Demand Capacity Reservations (ODCRs) or Capacity Blocks for the GPU nodes, or none.

- **None** — on-demand and/or spot capacity (the default).
- **By id** — mark reservations with `Space`; they are selected by id in a `gpu-reserved` NodeClass.
- **By tags** — select every reservation carrying the tags (e.g. `team=dynamo`).
- **Fallback** — let the reserved NodePool use on-demand (and spot) capacity when the reservation is full.

Warning: once any NodeClass has `capacityReservationSelectorTerms`, Auto Mode stops using open ODCRs
for **every** NodeClass. Capacity Block instances are reclaimed 30 minutes before the block ends, and nodes
drain about 10 minutes before that.
""",
    "serving": """
# Serving

- **Aggregated** — one worker does prefill and decode. The simplest; any GPU type.
- **Disaggregated over EFA** — prefill and decode workers on separate nodes in one zone, KV cache moved over
  EFA with the LIBFABRIC backend. Only for EFA-capable types.
- **Disaggregated over TCP** — the same split without EFA; `kv_buffer_device: cpu` is set for you.

The model table shows the weights' size and how many GPUs a worker needs on your type (that is also the
tensor-parallel size). A model that does not fit says so here, before anything is paid for.
The Hugging Face token is read from `HF_TOKEN` or typed here; it is never written to the plan or a log.
""",
    "review": """
# Review

The plan, every file that will be applied (select a file on the left to view it), the hourly cost, the
preflight verdicts with their fixes, and warnings.

- `e` exports the plan and every rendered file to a directory (for GitOps or review).
- `Enter` (or `c`) asks for confirmation, then starts provisioning. **Nothing is created before that.**
""",
}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            with VerticalScroll():
                yield Markdown(HELP.get(self.step, "# Help\n") + "\n" + COMMON_KEYS)
            yield Static("Esc closes this help.", classes="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
