"""Fuzzing job files and the global configuration (issue #9): whatever the input (random
keys, wrong types, unicode, huge values, broken YAML), loading either succeeds or fails with
exit 2 and only `FILE:LINE:` messages, never a traceback.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backupctl.config.validate import load_config
from backupctl.errors import ConfigError
from backupctl.status import ExitStatus
from tests import yaml_helpers
from tests.unit.config.conftest import ConfigDir

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

JOB: dict[str, Any] = {
    "job": "emr-db", "description": "電子カルテ",
    "host": {"address": "local"},
    "source": {"paths": ["/srv/data"], "exclude": ["*.tmp"], "before": [], "after": []},
    "repository": {"url": "/srv/restic/emr-db", "password_file": "PW"},
    "generations": {"last": 7, "daily": 14},
    "copies": [{"name": "usb", "kind": "offline", "url": "/mnt/usb", "password_file": "PW",
                "max_age": "7d"}],
    "verify": {"sample": "5%", "always": ["/srv/data/a"], "read_data_subset": "10%",
               "rto": "2h", "commands": ["true"]},
    "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"},
}

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
huge = st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                 st.floats(allow_nan=True, allow_infinity=True),
                 st.text(min_size=5000, max_size=20000).map(lambda s: s or "x" * 5000))
scalar = st.one_of(st.none(), st.booleans(), st.integers(), text, huge,
                   st.sampled_from(["7d", "5%", "all", "-1", "0", "１０", "2h", "local",
                                    "../../etc/passwd", "$(touch /tmp/pwned)", "-rf",
                                    "*-*-* 25:00:00", "電子カルテ", "\x00", "\u202e"]))
value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, item in data.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with a few random edits: a value replaced, a key removed or a key added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(_paths(data) or [()]))
        parent: Any = data
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if not where:
            action = "add"
        if action == "replace":
            parent[where[-1]] = draw(value)
        elif action == "remove":
            del parent[where[-1]]
        else:
            target = parent[where[-1]] if where else data
            if isinstance(target, dict):
                target[draw(text)] = draw(value)
            elif isinstance(target, list):
                target.append(draw(value))
    return data


LINE = re.compile(r"^(?P<file>/[^\n]*?):(?P<line>\d+):")


def _assert_config_error_or_ok(cfg: ConfigDir, path: Path) -> None:
    try:
        load_config(cfg.config)
    except ConfigError as exc:
        assert exc.status is ExitStatus.USAGE
        assert exc.messages
        for message in exc.messages:
            found = LINE.match(message)
            assert found, f"not FILE:LINE: {message!r}"
            assert int(found["line"]) >= 1


def _write(path: Path, data: Any) -> None:
    try:
        body = yaml_helpers.dump(data)
    except Exception:  # a value ruamel cannot represent: write its repr as text instead
        body = repr(data)
    path.write_text(body, encoding="utf-8", errors="surrogatepass")


@FUZZ
@given(data=mutated(JOB))
def test_fuzzed_job_file_is_exit_2_with_file_line_or_valid(cfg: ConfigDir,
                                                          data: dict[str, Any]) -> None:
    body = _fill(data, cfg)
    path = cfg.jobs_dir / "fuzz.yaml"
    _write(path, body)
    _assert_config_error_or_ok(cfg, path)


def _fill(data: Any, cfg: ConfigDir) -> Any:
    if isinstance(data, dict):
        return {k: _fill(v, cfg) for k, v in data.items()}
    if isinstance(data, list):
        return [_fill(v, cfg) for v in data]
    return str(cfg.password_file) if data == "PW" else data


@FUZZ
@given(raw=st.text(max_size=400))
def test_random_text_as_a_job_file_is_exit_2_with_file_line_or_valid(cfg: ConfigDir,
                                                                      raw: str) -> None:
    path = cfg.jobs_dir / "raw.yaml"
    path.write_text(raw, encoding="utf-8", errors="surrogatepass")
    _assert_config_error_or_ok(cfg, path)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_bytes_as_a_job_file_is_exit_2(cfg: ConfigDir, raw: bytes) -> None:
    path = cfg.jobs_dir / "bytes.yaml"
    path.write_bytes(raw)
    _assert_config_error_or_ok(cfg, path)


@FUZZ
@given(data=st.data())
def test_fuzzed_global_config_is_exit_2_with_file_line_or_valid(cfg: ConfigDir,
                                                               data: st.DataObject) -> None:
    base = {"jobs_dir": str(cfg.jobs_dir), "state_dir": str(cfg.root / "state"),
            "scratch_dir": str(cfg.root / "scratch"), "known_hosts": str(cfg.root / "kh"),
            "concurrency": 2, "command_timeout": "6h"}
    _write(cfg.config, data.draw(mutated(base)))
    _assert_config_error_or_ok(cfg, cfg.config)


NASTY = [
    "job: [\n",                                           # broken YAML
    "job: emr\njob: emr\n",                               # duplicate key
    "- a\n- b\n",                                         # not a mapping
    "job: emr\nhost: {address: local}\nsource: {paths: [/x]}\nrepository: 12\n"
    "generations: {last: 99999999999999999999999999}\nschedule: {backup: 1}\n",
    "job: \"\\u202e\\x00\"\nunknown: {deep: [1, {2: 3}]}\n" + "x" * 100_000 + ": 1\n",
    "\ufeffjob: 電子カルテ\n&a [*a]\n",
]


@pytest.mark.parametrize("body", NASTY)
def test_nasty_job_files_through_the_cli_exit_2_without_traceback(cfg: ConfigDir,
                                                                    body: str) -> None:
    (cfg.jobs_dir / "nasty.yaml").write_text(body, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "backupctl", "-c", str(cfg.config),
                           "validate"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(LINE.match(line) for line in lines), proc.stderr
