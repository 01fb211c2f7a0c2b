"""The inspector's report on proof freshness (SPEC §12): per job with `verify.prove_within`,
whether every file of the newest snapshot was proven within the window, and since when.

The state is read when the report is made (proofs are not records of the period): the
statement says so, and names the oldest proof (every file was proven since then) or the
file that has waited longest.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from backupctl.config.values import format_duration
from backupctl.state.proofs import Freshness, standing

_WORDS = {
    "en": {
        "title": "Proven within",
        "met": "yes: no file of the newest snapshot ({files}) has gone longer than {window} "
               "without a restore test restoring it and matching its source hash",
        "since": "; the oldest proof is of {since}",
        "waiting": "; {unproven} file(s) new or changed since {waiting} await their first "
                   "proof, still within the window",
        "missed": "NO: {unproven} of {files} file(s) unproven; a file has gone longer than "
                  "{window} without proof (oldest proof {since}, waiting since {waiting})",
        "none": "none",
        "as_of": " (as of {now})",
    },
    "ja": {
        "title": "証明の鮮度",
        "met": "はい: 最新スナップショットのファイル({files})はいずれも、{window}を超えずに"
               "復元テストで復元され、取得元のハッシュと照合されています",
        "since": "。最も古い証明は {since}",
        "waiting": "。{waiting} 以降に追加・変更された {unproven} ファイルは初回の証明待ち"
                   "(期間内)",
        "missed": "いいえ: {files} ファイル中 {unproven} が未証明。{window}を超えて証明されて"
                  "いないファイルがあります(最も古い証明 {since}、証明待ちの開始 {waiting})",
        "none": "なし",
        "as_of": "({now} 時点)",
    },
}


def statement(fresh: Freshness | None, *, window: int | None, lang: str, now: datetime,
              tz: tzinfo) -> dict[str, Any] | None:
    """The report's entry for one job (None: no prove_within, or no backup recorded yet)."""
    if window is None or fresh is None:
        return None
    words = _WORDS[lang]
    judged = standing(fresh, window=window, now=now)

    def local(stamp: str | None) -> str:
        if stamp is None:
            return words["none"]
        return datetime.fromisoformat(stamp).astimezone(tz).isoformat(timespec="minutes")

    values = {"files": judged.files, "unproven": judged.unproven,
              "window": format_duration(window), "since": local(judged.oldest_proof),
              "waiting": local(judged.waiting_since)}
    if judged.met:
        text = words["met"].format(**values)
        text += words["since"].format(**values) if judged.oldest_proof else ""
        text += words["waiting"].format(**values) if judged.unproven else ""
    else:
        text = words["missed"].format(**values)
    text += words["as_of"].format(now=now.astimezone(tz).isoformat(timespec="minutes"))
    return {"title": words["title"], "statement": text, **judged.to_json()}
