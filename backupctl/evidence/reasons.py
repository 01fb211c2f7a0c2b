"""Why a guideline item needs action (要対応), in one wording (reasons.yaml, ja/en).

The management summary decides each verdict from these reasons (an item is achieved when
no configured job has a reason for it), shows them beside the verdict and lists them as
findings; the inspector's report words its findings with the same table, and the digest mail
prints the summary. So the page never says 要対応 next to evidence that reads like success
without saying why (issue 29: "0/1 jobs: newest backup succeeded" while the real reason,
fewer than two generations, was only in the code).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

MIN_GENERATIONS = 2  # the guideline's "several generations" (validate --strict: the same)
MAX_SHOWN = 4  # reasons shown beside one verdict; the rest are counted

Reason = tuple[str, str]  # (guideline item id, text)


@functools.cache
def table() -> dict[str, dict[str, str]]:
    text = resources.files("backupctl.evidence").joinpath("reasons.yaml").read_text("utf-8")
    data: dict[str, dict[str, str]] = YAML(typ="safe").load(text)
    return data


def say(lang: str, key: str, **fields: Any) -> str:
    """One reason in `lang`, its placeholders filled."""
    return table()[lang][key].format(**fields)


def policy_text(policy: Mapping[str, int]) -> str:
    """A generation policy as the job file writes it: `last 7, daily 14`."""
    return ", ".join(f"{key} {count}" for key, count in policy.items()) or "-"


def generations(lang: str, held: int | None, policy: Mapping[str, int]) -> str | None:
    """The reason when fewer than MIN_GENERATIONS are kept (None when enough, or unknown)."""
    if held is None or held >= MIN_GENERATIONS:
        return None
    return say(lang, "few_generations", held=held, need=MIN_GENERATIONS,
               policy=policy_text(policy))


def of_job(j: Mapping[str, Any], *, lang: str, open_flags: Sequence[Mapping[str, Any]],
           lost: Iterable[str] = ()) -> list[Reason]:
    """Why job entry `j` (the report's job entry with the summary's facts: the newest
    backup's and restore test's result, rto_exceeded) needs action, per guideline item.
    `lost`: the job's repositories that lost snapshots their policy keeps."""
    totals = j["totals"]
    out: list[Reason] = []
    if totals["backups"] == 0:
        out.append(("backups", say(lang, "no_backup")))
    elif j.get("last_backup_result") != "pass":
        out.append(("backups", say(lang, "backup_failed")))
    if few := generations(lang, totals["generations"], j.get("policy") or {}):
        out.append(("backups", few))
    out += [("backups", say(lang, "generations_lost", repository=r)) for r in lost]
    if j.get("last_restore_result") is None:
        out.append(("restore-tests", say(lang, "no_restore")))
    elif j.get("last_restore_result") != "pass":
        out.append(("restore-tests", say(lang, "restore_failed")))
    if j.get("rto_exceeded"):
        out.append(("restore-tests", say(lang, "rto")))
    out += _copies(j, lang)
    out += [("tripwires", say(lang, "flag", since=str(flag["raised_at"])[:10]))
            for flag in open_flags if flag["job"] == j["job"]]
    return out


def _copies(j: Mapping[str, Any], lang: str) -> list[Reason]:
    copies = [c for c in j["copies"] if c["kind"]]
    out: list[Reason] = []
    if not any(c["kind"] in ("offline", "immutable") for c in copies):
        out.append(("offline-copies", say(lang, "no_offline")))
    for copy in copies:
        if copy["runs"] == 0:
            out.append(("offline-copies", say(lang, "copy_never", copy=copy["name"])))
        elif copy["runs"] <= copy["failed"]:
            out.append(("offline-copies", say(lang, "copy_failed", copy=copy["name"])))
        if copy["last_probe"] == "fail":
            out.append(("offline-copies", say(lang, "probe", copy=copy["name"])))
    return out


def shown(texts: Sequence[str], lang: str) -> list[str]:
    """At most MAX_SHOWN reasons, then how many more."""
    if len(texts) <= MAX_SHOWN:
        return list(texts)
    return [*texts[:MAX_SHOWN], say(lang, "more", count=len(texts) - MAX_SHOWN)]
