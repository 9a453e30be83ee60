"""`dynamo-wizard plan -o FILE [--answers answers.yaml]`: the wizard's questions as line prompts.

For SSH sessions without a full-screen terminal, screen readers and scripts. It asks exactly what the TUI
asks, offers the same options with the same reasons when one cannot be used (tui.choices), and turns the
answers into the plan the same way (tui.answers.Answers.to_plan), so the file is byte-for-byte the TUI's
for the same answers.

`--answers FILE` answers any question in advance (a YAML mapping; keys below); the rest are asked. Without
a terminal, every question must be answered there. Keys: deployment, region, instanceType, families (extra
NodePool families), capacity (none | ids | tags), reservationIds, reservationTags, fallback, capacityTypes,
mode, model, replicas, prefillReplicas, decodeReplicas, privileged, planOnly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..core.catalog import Catalog, load_catalog
from ..core.errors import PlanError, Problem, WizardError
from ..core.inventory import CapacityReservation, Discovery, RegionSummary
from ..core.plan import NAME_RE, Mode
from ..core.redact import redact
from ..tui.answers import Answers, write_plan
from ..tui.choices import (
    MODE_TITLES,
    cluster_zones,
    default_type,
    fit_problems,
    gpus_for,
    instance_type_info,
    mode_choices,
    model_choices,
    parse_tags,
    rank_regions,
    reservation_rows,
    type_choices,
)
from ..tui.offline import PlanOnlyDiscovery

ANSWER_KEYS = ("deployment", "region", "instanceType", "families", "capacity", "reservationIds", "reservationTags",
               "fallback", "capacityTypes", "mode", "model", "replicas", "prefillReplicas", "decodeReplicas",
               "privileged", "planOnly")
MAX_REPLICAS = 64


class AnswerError(WizardError):
    """An answer (from the file) that cannot be used: says which and why."""


@dataclass
class Option:
    value: str
    title: str
    disabled: str = ""  # why it cannot be chosen ('' when it can)


class Prompter:
    """The questions, asked with questionary; `input`/`output` let tests drive them through a pipe."""

    def __init__(self, input: Any = None, output: Any = None) -> None:
        self.kwargs: dict[str, Any] = {}
        if input is not None:
            self.kwargs["input"] = input
        if output is not None:
            self.kwargs["output"] = output

    def _ask(self, question: Any) -> Any:
        answer = question.unsafe_ask()  # Ctrl+C raises KeyboardInterrupt: cli.py prints "interrupted"
        return answer

    def select(self, message: str, options: Sequence[Option], default: str | None) -> str:
        import questionary

        choices = [questionary.Choice(o.title, value=o.value, disabled=o.disabled or None) for o in options]
        usable = [o.value for o in options if not o.disabled]
        if default not in usable:
            default = usable[0] if usable else None
        long_list = len(options) > 8
        return str(self._ask(questionary.select(
            message, choices=choices, default=default, use_search_filter=long_list, use_jk_keys=not long_list,
            instruction="(arrows, Enter; type to filter)" if long_list else "(arrows, Enter)", **self.kwargs)))

    def checkbox(self, message: str, options: Sequence[Option], checked: Sequence[str]) -> list[str]:
        import questionary

        choices = [questionary.Choice(o.title, value=o.value, disabled=o.disabled or None,
                                      checked=o.value in checked and not o.disabled) for o in options]
        answer = self._ask(questionary.checkbox(message, choices=choices,
                                                instruction="(Space marks, Enter accepts)", **self.kwargs))
        return [str(a) for a in answer]

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str:
        import questionary

        def check(value: str) -> bool | str:
            error = validate(value.strip())
            return True if error is None else error

        return str(self._ask(questionary.text(message, default=default, validate=check, **self.kwargs))).strip()

    def confirm(self, message: str, default: bool) -> bool:
        import questionary

        return bool(self._ask(questionary.confirm(message, default=default, **self.kwargs)))

    def say(self, text: str) -> None:
        output = self.kwargs.get("output")
        if output is None:
            print(text, flush=True)


class PlainWizard:
    """The TUI's screens as a sequence of questions, on the same choices and answers."""

    def __init__(self, discovery: Discovery | None, prompter: Prompter, *, given: dict[str, Any] | None = None,
                 catalog: Catalog | None = None, now: Callable[[], datetime] | None = None,
                 interactive: bool = True) -> None:
        self.discovery = discovery
        self.prompter = prompter
        self.given = dict(given or {})
        self.catalog = catalog or load_catalog()
        self.now = now or (lambda: datetime.now(UTC))
        self.interactive = interactive
        self.answers = Answers()
        self.plan_only = discovery is None or isinstance(discovery, PlanOnlyDiscovery)

    # Answer from the file, else ask ------------------------------------------------------------------

    def _missing(self, key: str) -> None:
        if not self.interactive:
            raise AnswerError(f"no answer for {key!r} and no terminal to ask on",
                              f"add {key} to the answers file, or run `dynamo-wizard plan` in a terminal")

    def choose(self, key: str, message: str, options: Sequence[Option], default: str | None) -> str:
        if key in self.given:
            value = str(self.given[key])
            match = next((o for o in options if o.value == value), None)
            if match is None:
                known = ", ".join(o.value for o in options if not o.disabled)[:300]
                raise AnswerError(f"{key}: {_brief(repr(value))} is not one of the options", f"use one of: {known}")
            if match.disabled:
                raise AnswerError(f"{key}: {_brief(repr(value))} cannot be used: {match.disabled}", "choose another")
            return value
        self._missing(key)
        return self.prompter.select(message, options, default)

    def choose_many(self, key: str, message: str, options: Sequence[Option], checked: Sequence[str]) -> list[str]:
        if key in self.given:
            values = self.given[key]
            if not isinstance(values, list):
                raise AnswerError(f"{key}: expected a list", f"write {key}: [a, b]")
            out = []
            for v in values:
                match = next((o for o in options if o.value == str(v)), None)
                if match is None or match.disabled:
                    why = match.disabled if match else "not one of the options"
                    raise AnswerError(f"{key}: {v!r} cannot be used: {why}", "remove it from the answers file")
                out.append(str(v))
            return out
        self._missing(key)
        return self.prompter.checkbox(message, options, checked)

    def ask_text(self, key: str, message: str, default: str, validate: Callable[[str], str | None]) -> str:
        if key in self.given:
            value = str(self.given[key]).strip()
            error = validate(value)
            if error:
                raise AnswerError(f"{key}: {error}")
            return value
        self._missing(key)
        return self.prompter.text(message, default, validate)

    # The questions, in the TUI's order --------------------------------------------------------------

    def run(self) -> Answers:
        self.ask_deployment()
        summary = self.ask_region()
        self.ask_instances(summary)
        self.ask_capacity()
        self.ask_serving(summary)
        return self.answers

    def ask_deployment(self) -> None:
        def check(name: str) -> str | None:
            if not NAME_RE.match(name):
                return "a lowercase letter, then lowercase letters, digits or '-', at most 31 characters"
            return None

        self.answers.deployment = self.ask_text("deployment", "Deployment name (names the cluster, tags everything)",
                                                self.answers.deployment, check)

    def _read_regions(self) -> list[RegionSummary]:
        assert self.discovery is not None
        regions = self.discovery.regions()
        self.prompter.say(f"Reading {len(regions)} regions: zones, GPU offerings and quotas…")
        return self.discovery.region_summaries(regions, list(self.catalog.families))

    def ask_region(self) -> RegionSummary:
        summaries = self._read_regions()
        wanted = list(dict.fromkeys([*self.catalog.guide_families, *self.answers.families]))
        ranked = rank_regions(summaries, wanted)
        options = []
        for c in ranked:
            zone, count = c.best_zone
            quota = f"G {c.g_quota:g} / P {c.p_quota:g} vCPU" if c.g_quota is not None and c.p_quota is not None \
                else "quota unknown"
            options.append(Option(c.region, f"{c.region:<16} {count}/{len(wanted)} families in {zone or '—'} · "
                                            f"{len(c.families_offered)}/{len(wanted)} in region · {quota}",
                                  c.reason))
        region = self.choose("region", "Region (ranked by the GPU families one zone offers)", options,
                             self.answers.region)
        chosen = next(c for c in ranked if c.region == region)
        self.answers.region = region
        self.answers.zones = list(chosen.cluster_zones)
        if chosen.excluded_zones:
            self.prompter.say("Cluster zones: " + ", ".join(chosen.cluster_zones) + " (excluded: " +
                              "; ".join(f"{z}: {why}" for z, why in chosen.excluded_zones) + ")")
        assert self.discovery is not None
        return self.discovery.region_summary(region, list(self.catalog.families))

    def ask_instances(self, summary: RegionSummary) -> None:
        keep, _ = cluster_zones(summary)
        self.answers.zones = [z for z in self.answers.zones if z in keep] or keep
        rows = type_choices(summary, self.catalog, self.answers.zones, self.answers.capacity_types)
        options = [
            Option(r.instance_type,
                   f"{r.instance_type:<18} {r.gpus} × {r.gpu_model.replace('NVIDIA ', '')} {r.gpu_memory_gb:.0f} GB · "
                   f"{r.vcpus} vCPU · EFA {'yes' if r.efa else 'no'} · "
                   + (f"${r.price:.3f}/h" if r.price is not None else "$?/h"),
                   r.reason)
            for r in rows
        ]
        instance_type = self.choose("instanceType", "Instance type for the workers (its family goes into the GPU NodePool)",
                                    options, default_type(rows, self.answers.instance_type))
        family = next(r.family for r in rows if r.instance_type == instance_type)
        families: dict[str, list[str]] = {}
        for r in rows:
            families.setdefault(r.family, [])
            if r.available:
                families[r.family].append(r.instance_type)
        extra_options = [Option(f, f"{f} ({len(types)} usable types)", "" if types else "no usable type here")
                         for f, types in families.items() if f != family]
        previous = [f for f in self.answers.families if f != family]
        extra = self.choose_many("families", "More families for the GPU NodePool (optional)", extra_options, previous)
        order = list(self.catalog.families)
        self.answers.instance_type = instance_type
        self.answers.families = sorted({family, *extra}, key=lambda f: order.index(f) if f in order else 99)

    def ask_capacity(self) -> None:
        a = self.answers
        reservations: list[CapacityReservation]
        if self.plan_only:
            reservations, notes = [], ["plan-only mode: reservations are not read"]
        else:
            assert self.discovery is not None
            reservations, notes = self.discovery.reservations(a.region)
        for note in notes:
            self.prompter.say(redact(note))
        rows = reservation_rows(reservations, a.families, a.zones, a.instance_type, self.now())
        fits = [r for r in rows if r.fits]
        ids_reason = "" if fits else (f"none of the {len(rows)} reservations fits {', '.join(a.families)}" if rows
                                      else f"no reservations in {a.region}")
        options = [Option("none", "None — on-demand / spot capacity (the default)"),
                   Option("ids", "By id — choose reservations", ids_reason),
                   Option("tags", "By tags — every reservation with the given tags")]
        capacity = self.choose("capacity", "Reserved capacity (ODCRs and Capacity Blocks)", options, a.capacity)
        a.capacity = capacity  # type: ignore[assignment]
        if capacity == "none":
            a.reservation_ids, a.reservation_tags = [], {}
            types = self.choose("capacityTypes", "Without a reservation, GPU nodes use",
                                [Option("on-demand,spot", "on-demand and spot"), Option("on-demand", "on-demand only"),
                                 Option("spot", "spot only")], ",".join(a.capacity_types))
            a.capacity_types = types.split(",")
            return
        self.prompter.say("Note: selecting reservations adds capacityReservationSelectorTerms to a NodeClass; "
                          "Auto Mode then stops using open ODCRs for every NodeClass in the cluster.")
        if capacity == "ids":
            options = [Option(r.reservation.id,
                              f"{r.reservation.id} {r.reservation.instance_type} {r.reservation.zone} "
                              f"{r.reservation.available}/{r.reservation.total} {r.reservation.state}"
                              + (f" ({'; '.join(r.warnings)})" if r.warnings else ""),
                              r.reason) for r in rows]
            ids: list[str] = []
            while not ids:
                ids = self.choose_many("reservationIds", "Reservations to use", options, a.reservation_ids)
                if not ids:
                    if "reservationIds" in self.given:
                        raise AnswerError("reservationIds: empty", "list at least one reservation id")
                    self.prompter.say("Mark at least one reservation with Space.")
            a.reservation_ids, a.reservation_tags = ids, {}
        else:
            def check(text: str) -> str | None:
                try:
                    parse_tags(text)
                except ValueError as err:
                    return str(err)
                return None

            given_tags = self.given.get("reservationTags")
            if isinstance(given_tags, dict):
                self.given["reservationTags"] = ", ".join(f"{k}={v}" for k, v in given_tags.items())
            text = self.ask_text("reservationTags", "Reservation tags (key=value, comma-separated)",
                                 ", ".join(f"{k}={v}" for k, v in a.reservation_tags.items()), check)
            a.reservation_tags, a.reservation_ids = parse_tags(text), []
        a.fallback = self.choose("fallback", "When the reservation is full, fall back to",
                                 [Option("none", "nothing: reserved capacity only"), Option("on-demand", "on-demand"),
                                  Option("on-demand-and-spot", "on-demand, then spot")], a.fallback)

    def ask_serving(self, summary: RegionSummary) -> None:
        a = self.answers
        itype = instance_type_info(a.instance_type, self.catalog, summary)
        modes = mode_choices(itype, self.catalog)
        a.mode = self.choose("mode", "Serving mode",
                             [Option(m.mode, f"{m.title} — {m.detail}", m.reason) for m in modes], a.mode)
        models = model_choices(self.catalog, itype)
        model_id = self.choose("model", f"Model (GPUs per worker on {a.instance_type} = tensor parallel size)",
                               [Option(c.model.id, f"{c.model.id:<46} {c.model.weights_gb:g} GB · "
                                                   f"{c.gpus_needed} GPU(s)", c.reason) for c in models], a.model)
        choice = next(c for c in models if c.model.id == model_id)
        assert itype is not None
        gpus = gpus_for(choice.model, itype)
        problems = fit_problems(choice.model, itype, gpus)
        if problems:  # the options already refuse what does not fit; this guards the answers file
            raise AnswerError("model: does not fit: " + "; ".join(problems))
        a.model, a.worker_gpus = model_id, gpus

        def replicas(text: str) -> str | None:
            if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
                return f"{text!r}: give a whole number from 1 to {MAX_REPLICAS}"
            return None

        if a.mode == Mode.AGG.value:
            a.replicas = int(self.ask_text("replicas", "Workers", str(a.replicas), replicas))
        else:
            a.prefill_replicas = int(self.ask_text("prefillReplicas", "Prefill workers", str(a.prefill_replicas),
                                                   replicas))
            a.decode_replicas = int(self.ask_text("decodeReplicas", "Decode workers", str(a.decode_replicas),
                                                  replicas))
        if a.mode == Mode.DISAGG_EFA.value:
            if "privileged" in self.given:
                a.privileged = bool(self.given["privileged"])
            else:
                self._missing("privileged")
                a.privileged = self.prompter.confirm(
                    "Run EFA workers privileged? (later upstream EFA docs need it for GPU memory registration; "
                    "the guide uses IPC_LOCK only)", a.privileged)
        else:
            a.privileged = False


def _brief(text: str, limit: int = 60) -> str:
    """A value as it goes into a message: never a whole hostile answer on one line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_answers(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise AnswerError(f"no answers file at {p}", "give the path of a YAML file of answers") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise AnswerError(f"cannot read answers from {p}: {_brief(str(err), 200)}", "fix the YAML") from None
    except (ValueError, RecursionError) as err:  # e.g. an integer of thousands of digits, deep nesting
        raise AnswerError(f"cannot read answers from {p}: {_brief(str(err), 200)}", "fix the YAML") from None
    if not isinstance(data, dict):
        raise AnswerError(f"{p}: expected a YAML mapping of answers", "write key: value lines")
    unknown = [k for k in data if k not in ANSWER_KEYS]
    if unknown:
        raise AnswerError(f"{p}: unknown answer {_brief(repr(unknown[0]))}", "known answers: " + ", ".join(ANSWER_KEYS))
    return data


def make_discovery(given: dict[str, Any], prompter: Prompter, interactive: bool) -> Discovery | None:
    """Live AWS (or the sandbox), or plan-only when asked for or when there are no credentials and the user
    agrees (the TUI's welcome screen offers the same)."""
    if given.get("planOnly"):
        return PlanOnlyDiscovery()
    from ..cloud.aws import discovery_from_env

    discovery = discovery_from_env()
    try:
        identity = discovery.identity()
    except WizardError as err:
        prompter.say(f"AWS: {redact(str(err))}")
        if not interactive:
            raise AnswerError("no usable AWS credentials", "set planOnly: true in the answers, or configure "
                              "credentials, or use `dynamo-wizard --sandbox plan`") from None
        if prompter.confirm("Continue in plan-only mode (nothing is checked against AWS)?", True):
            return PlanOnlyDiscovery()
        raise
    prompter.say(f"AWS: account {identity.account} · {identity.arn}")
    return discovery


def run(args: argparse.Namespace, *, input: Any = None, output: Any = None) -> int:
    given = load_answers(args.answers) if getattr(args, "answers", None) else {}
    interactive = input is not None or sys.stdin.isatty()
    prompter = Prompter(input=input, output=output)
    discovery = make_discovery(given, prompter, interactive)
    wizard = PlainWizard(discovery, prompter, given=given, interactive=interactive)
    answers = wizard.run()
    try:
        plan = answers.to_plan()
    except PlanError as err:  # cli.py prints each problem
        raise PlanError([Problem("answers", line) for line in err.lines()]) from None
    path = write_plan(plan, args.output)
    prompter.say(f"Wrote {path}: {plan.serving.mode.value} {plan.serving.model} on {plan.serving.instance_type} in "
                 f"{plan.region} ({MODE_TITLES[plan.serving.mode.value]}). Next: dynamo-wizard render {path} -o DIR, "
                 f"or dynamo-wizard apply {path}")
    return 0
