"""load_config: every problem at once, as FILE:LINE: key.path: message (issue #3)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backupctl.config.validate import guideline_findings, load_config
from backupctl.errors import ConfigError
from backupctl.status import ExitStatus
from tests.unit.config.conftest import ConfigDir, valid_job

THREE_MISTAKES = """
job: emr-db
host:
  address: 192.0.2.10
  user: backupctl
  identity_file: {id}
source:
  paths: [/srv/data]
  exlude: ["*.tmp"]
repository:
  url: /srv/restic/emr-db
  password_file: /nonexistent/emr-db.pw
generations:
  last: 7
copies:
  - name: usb
    kind: offline
    url: /mnt/usb/emr-db
    password_file: {pw}
    max_age: 7days
schedule:
  backup: "*-*-* 02:00:00"
  verify: "Sun *-*-* 04:00:00"
"""


def problems(cfg: ConfigDir, *, strict: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg.load(strict=strict)
    assert info.value.status is ExitStatus.USAGE
    return info.value.messages


def test_valid_configuration_loads(cfg: ConfigDir) -> None:
    cfg.write_job("emr-db", valid_job("emr-db"))
    config = cfg.load(strict=True)
    assert list(config.jobs) == ["emr-db"]
    assert config.job("emr-db").description == "テスト"


def test_three_mistakes_are_reported_together_with_lines_and_key_paths(cfg: ConfigDir) -> None:
    path = cfg.write_job("emr-db", THREE_MISTAKES)

    found = problems(cfg)

    assert len(found) == 3, found
    assert found[0] == f"{path}:8: source.exlude: unknown key; did you mean source.exclude?"
    assert found[1] == (f"{path}:11: repository.password_file: password file "
                        "/nonexistent/emr-db.pw does not exist")
    assert found[2].startswith(f"{path}:19: copies[0].max_age: invalid duration '7days'")


def test_errors_of_several_files_are_all_reported(cfg: ConfigDir) -> None:
    a = cfg.write_job("a", valid_job("a").replace("last: 7", "last: 0"))
    b = cfg.write_job("b", valid_job("b").replace("address: local", "adress: local"))
    found = problems(cfg)
    assert any(p.startswith(f"{a}:11: generations.last:") for p in found), found
    assert any(p == f"{b}:4: host.adress: unknown key; did you mean host.address?"
               for p in found), found


def test_unknown_top_level_key(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a") + "retention: 7\n")
    assert problems(cfg) == [f"{path}:21: retention: unknown key"]  # nothing close to it


def test_duplicate_job_names_name_both_files(cfg: ConfigDir) -> None:
    first = cfg.write_job("a", valid_job("same"))
    second = cfg.write_job("b", valid_job("same"))
    # Both files are left out: which one is the real job is for the admin to say.
    assert problems(cfg) == [f"{first}:1: job: duplicate job name 'same' (also in {second})",
                             f"{second}:1: job: duplicate job name 'same' (also in {first})"]


def test_duplicate_job_names_are_found_even_when_the_file_has_other_errors(
        cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("same"))
    second = cfg.write_job("b", valid_job("same").replace("last: 7", "last: -1"))
    found = problems(cfg)
    assert any(p.startswith(f"{second}:1: job: duplicate job name 'same'") for p in found)
    assert any(p.startswith(f"{second}:11: generations.last:") for p in found)


def test_missing_password_file_of_a_copy(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a").replace(
        "    password_file: {pw}", "    password_file: /nope/usb.pw"))
    assert problems(cfg) == [f"{path}:16: copies[0].password_file: password file "
                             "/nope/usb.pw does not exist"]


def test_relative_password_file_is_relative_to_the_job_file(cfg: ConfigDir) -> None:
    (cfg.jobs_dir / "a.pw").write_text("x\n")
    cfg.write_job("a", valid_job("a").replace("  password_file: {pw}\ngenerations",
                                              "  password_file: a.pw\ngenerations"))
    config = cfg.load()
    assert config.job("a").repository.password_file == cfg.jobs_dir / "a.pw"


REMOTE = """
job: remote
host:
  address: 192.0.2.10
  user: backupctl
  identity_file: {identity}
source:
  paths: [/srv/data]
repository:
  url: /srv/restic/remote
  password_file: {pw}
generations:
  last: 7
schedule:
  backup: "*-*-* 02:00:00"
  verify: daily
"""


def test_missing_identity_file(cfg: ConfigDir) -> None:
    path = cfg.write_job("remote", REMOTE.replace("{identity}", "/nope/id_ed25519"))
    assert problems(cfg) == [f"{path}:5: host.identity_file: identity file /nope/id_ed25519 "
                             "does not exist"]


def test_unreadable_identity_file(cfg: ConfigDir) -> None:
    # Root reads any mode, so "unreadable" is produced with something that is not a file.
    (cfg.root / "id_dir").mkdir()
    path = cfg.write_job("remote", REMOTE.replace("{identity}", str(cfg.root / "id_dir")))
    assert problems(cfg) == [f"{path}:5: host.identity_file: identity file "
                             f"{cfg.root / 'id_dir'} is not a regular file"]


def test_remote_host_needs_user_and_identity(cfg: ConfigDir) -> None:
    text = REMOTE.replace("  user: backupctl\n", "").replace("  identity_file: {identity}\n",
                                                            "")
    path = cfg.write_job("remote", text)
    assert problems(cfg) == [f"{path}:2: host: a remote host needs user and identity_file"]


@pytest.mark.parametrize("expr", ["*-*-* 25:00:00", "every day", "Mon..Funday 02:00"])
def test_bad_oncalendar(cfg: ConfigDir, expr: str) -> None:
    path = cfg.write_job("a", valid_job("a").replace('backup: "*-*-* 02:00:00"',
                                                     f'backup: "{expr}"'))
    found = problems(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:19: schedule.backup: bad OnCalendar expression "
                               f"{expr!r}")


def test_bad_oncalendar_of_copy_schedule_uses_the_yaml_key(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a") + '  copy: "*-*-* 03:99:00"\n')
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith(f"{path}:21: schedule.copy: bad OnCalendar")


@pytest.mark.parametrize("value", ["7days", "0d", "-1h", "7", "1.5h", "d"])
def test_bad_duration(cfg: ConfigDir, value: str) -> None:
    path = cfg.write_job("a", valid_job("a").replace("max_age: 7d", f'max_age: "{value}"'))
    found = problems(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:17: copies[0].max_age: invalid duration")


@pytest.mark.parametrize("value", ["0%", "150%", "5", "five%", "-5%"])
def test_bad_percent(cfg: ConfigDir, value: str) -> None:
    path = cfg.write_job("a", valid_job("a") + f'verify:\n  read_data_subset: "{value}"\n')
    found = problems(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:22: verify.read_data_subset: invalid percentage")


@pytest.mark.parametrize("value", ["5 percent", "-3", "true"])
def test_bad_sample(cfg: ConfigDir, value: str) -> None:
    path = cfg.write_job("a", valid_job("a") + f"verify:\n  sample: {value}\n")
    found = problems(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:22: verify.sample:")


def test_verify_paths_must_be_under_source_paths(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a") + "verify:\n  always: [/srv/data/x, /etc/passwd]\n")
    assert problems(cfg) == [f"{path}:22: verify.always[1]: '/etc/passwd' is not under any "
                             "of source.paths"]


def test_bad_job_name_and_relative_source_path(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("EMR_DB").replace("paths: [/srv/data]",
                                                          "paths: [srv/data]"))
    found = problems(cfg)
    assert len(found) == 2, found
    assert found[0] == (f"{path}:1: job: 'EMR_DB' is not allowed: use lower-case letters, "
                        "digits and '-', starting with a letter or digit, at most 63 "
                        "characters (e.g. emr-db)")
    assert found[1] == f"{path}:6: source.paths: source path 'srv/data' must be absolute"


def test_missing_required_key(cfg: ConfigDir) -> None:
    text = valid_job("a").replace('  verify: "Sun *-*-* 04:00:00"\n', "")
    path = cfg.write_job("a", text)
    assert problems(cfg) == [f"{path}:18: schedule.verify: required key is missing"]


def test_yaml_syntax_error_reports_the_line(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a").replace("  last: 7", "  last: [7"))
    found = problems(cfg)
    assert len(found) == 1, found
    assert re.match(rf"^{re.escape(str(path))}:1[1-3]: invalid YAML: ", found[0]), found


def test_yaml_tab_indentation_error_reports_the_line(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a").replace("  last: 7", "\tlast: 7"))
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith(f"{path}:11: invalid YAML:"), found


def test_duplicate_yaml_key_reports_the_second_line(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", valid_job("a").replace("  last: 7", "  last: 7\n  last: 9"))
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith(f"{path}:12: invalid YAML: found duplicate "
                                                   'key "last"'), found


def test_a_file_that_is_not_a_mapping(cfg: ConfigDir) -> None:
    path = cfg.write_job("a", "- just\n- a list\n")
    assert problems(cfg) == [f"{path}:1: the file must contain a mapping of keys"]


def test_a_file_that_is_not_utf8(cfg: ConfigDir) -> None:
    path = cfg.jobs_dir / "a.yaml"
    path.write_bytes("description: 電子カルテ\n".encode("shift_jis"))
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith(f"{path}:1: cannot read file:")


def test_global_config_unknown_key_and_bad_values(cfg: ConfigDir) -> None:
    path = cfg.write_config(f"""\
        jobs_dir: {cfg.jobs_dir}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/lib/backupctl/scratch
        known_hosts: /etc/backupctl/known_hosts
        concurency: 4
        command_timeout: 6 hours
        """)
    found = problems(cfg)
    assert f"{path}:5: concurency: unknown key; did you mean concurrency?" in found
    assert any(p.startswith(f"{path}:6: command_timeout: invalid duration") for p in found)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ssh_keepalive", "2h", "2h is out of range: use 1s to 1h"),
    ("ssh_dead_after", "4s", "4s is out of range: use 5s to 1d"),
    ("ssh_dead_after", "2d", "2d is out of range: use 5s to 1d"),
    ("ssh_dead_after", "0s", "invalid duration"),
])
def test_ssh_timing_out_of_bounds_names_the_line_and_the_range(
        cfg: ConfigDir, key: str, value: str, message: str) -> None:
    path = cfg.write_config(f"""\
        jobs_dir: {cfg.jobs_dir}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/lib/backupctl/scratch
        known_hosts: /etc/backupctl/known_hosts
        {key}: {value}
        """)
    found = problems(cfg)
    assert any(p.startswith(f"{path}:5: {key}: ") and message in p for p in found), found


def test_jobs_dir_must_exist(cfg: ConfigDir) -> None:
    path = cfg.write_config(f"""\
        jobs_dir: {cfg.root / 'missing'}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/lib/backupctl/scratch
        known_hosts: /etc/backupctl/known_hosts
        """)
    assert problems(cfg) == [f"{path}:1: jobs_dir: directory {cfg.root / 'missing'} does "
                             "not exist"]


# -- validate --strict ------------------------------------------------------------------

def test_strict_fails_a_job_without_copies_and_with_one_generation(cfg: ConfigDir) -> None:
    text = valid_job("a")
    copies = text[text.index("copies:"):text.index("schedule:")]
    path = cfg.write_job("a", text.replace(copies, "").replace("last: 7", "last: 1"))

    cfg.load()  # fine without --strict
    found = problems(cfg, strict=True)

    assert len(found) == 2, found
    assert found[0].startswith(f"{path}:1: copies: no offline or immutable copy")
    assert found[1].startswith(f"{path}:10: generations: fewer than 2 generations kept")


def test_strict_accepts_an_immutable_copy_and_counts_any_generation_key(
        cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a").replace("kind: offline", "kind: immutable")
                  .replace("last: 7", "last: 1\n  daily: 14"))
    assert list(cfg.load(strict=True).jobs) == ["a"]


def test_guideline_findings_of_a_job_file(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    data = cfg.load().job("a").model_dump(mode="json", by_alias=True)
    assert guideline_findings(data) == []
    assert [loc for loc, _ in guideline_findings({**data, "copies": []})] == [["copies"]]


def test_unknown_job_on_the_command_line_is_a_usage_error(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    config = cfg.load()
    with pytest.raises(ConfigError) as info:
        config.select(["a", "nope"], all_jobs=False)
    assert info.value.messages == [f"unknown job 'nope' (jobs in {cfg.jobs_dir}: a)"]
    with pytest.raises(ConfigError):
        config.select(["a"], all_jobs=True)
    assert [j.name for j in config.select([], all_jobs=True)] == ["a"]


def test_line_numbers_point_into_the_file(cfg: ConfigDir, tmp_path: Path) -> None:
    # Every reported line must exist and mention the key that is wrong.
    path = cfg.write_job("emr-db", THREE_MISTAKES)
    lines = path.read_text().splitlines()
    for message in problems(cfg):
        number = int(message.split(":")[1])
        key = message.split(": ")[1].rsplit(".", 1)[-1].split("[")[0]
        assert key in lines[number - 1], (message, lines[number - 1])


# -- orchestrator identity (issue #15) --------------------------------------------------

def test_orchestrator_defaults_to_the_host_name(cfg: ConfigDir) -> None:
    import socket

    cfg.write_config()
    assert cfg.load().settings.effective_orchestrator == socket.gethostname()


def test_orchestrator_is_taken_from_the_config(cfg: ConfigDir) -> None:
    cfg.write_config(f"""\
        jobs_dir: {cfg.jobs_dir}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/tmp/backupctl
        known_hosts: /etc/backupctl/known_hosts
        orchestrator: backup02.hospital.local
        """)
    assert cfg.load().settings.effective_orchestrator == "backup02.hospital.local"


@pytest.mark.parametrize("bad", ["''", "'backup 02'", "-backup", "'a;b'", "バックアップ",
                                 "x" * 256])
def test_a_bad_orchestrator_name_is_exit_2_with_its_line(cfg: ConfigDir, bad: str) -> None:
    path = cfg.write_config(f"""\
        jobs_dir: {cfg.jobs_dir}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/tmp/backupctl
        known_hosts: /etc/backupctl/known_hosts
        orchestrator: {bad}
        """)
    [found] = problems(cfg)
    assert found.startswith(f"{path}:5: orchestrator: "), found


def test_trusted_evidence_keys_resolve_relative_to_the_config_and_bad_ones_are_named(
        cfg: ConfigDir) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from backupctl.signing import Signer

    (cfg.root / "keys").mkdir()
    (cfg.root / "keys" / "b.pub").write_text(Signer(Ed25519PrivateKey.generate()).public.pem)
    (cfg.root / "keys" / "junk.pub").write_text("not a key\n")
    base = cfg.write_config().read_text()
    cfg.config.write_text(base + "evidence_trusted_keys:\n  - keys/b.pub\n")
    assert cfg.load().settings.evidence_trusted_keys == [cfg.root.resolve() / "keys/b.pub"]

    cfg.config.write_text(base + "evidence_trusted_keys:\n  - keys/b.pub\n  - keys/junk.pub\n"
                          "  - keys/gone.pub\n")
    found = problems(cfg)
    assert len(found) == 2, found
    assert re.search(r":7: evidence_trusted_keys\[1\]: .*junk\.pub is not an Ed25519 public key",
                     found[0]), found
    assert re.search(r":8: evidence_trusted_keys\[2\]: cannot read .*gone\.pub", found[1]), found


# -- what people see: time zone and the status page's password (issue #28) ----------------

def test_timezone_is_read_by_name_and_defaults_to_the_machines(
        cfg: ConfigDir, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("TZ", "Europe/Berlin")
    cfg.write_config()
    assert cfg.load().settings.tz == ZoneInfo("Europe/Berlin")
    cfg.config.write_text(cfg.config.read_text() + "timezone: Asia/Tokyo\n")
    assert cfg.load().settings.tz == ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize("bad", ["Asia/Tokio", "JST-9x", "Asia", "/etc/localtime"])
def test_an_unknown_timezone_is_exit_2_with_its_line(cfg: ConfigDir, bad: str) -> None:
    path = cfg.write_config(f"""\
        jobs_dir: {cfg.jobs_dir}
        state_dir: /var/lib/backupctl
        scratch_dir: /var/tmp/backupctl
        known_hosts: /etc/backupctl/known_hosts
        timezone: {bad}
        """)
    [found] = problems(cfg)
    assert found.startswith(f"{path}:5: timezone: "), found
    assert "unknown time zone" in found and "Asia/Tokyo" in found


def test_web_password_file_is_relative_to_the_config_and_must_be_private(
        cfg: ConfigDir) -> None:
    secret = cfg.root / "web.pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    base = cfg.write_config().read_text()
    cfg.config.write_text(base + "web_password_file: web.pw\n")
    assert cfg.load().settings.web_password_file == cfg.root.resolve() / "web.pw"

    secret.chmod(0o644)
    [found] = problems(cfg)
    assert re.search(r":5: web_password_file: .*web\.pw is readable or writable by group",
                     found), found
    cfg.config.write_text(base + "web_password_file: gone.pw\n")
    [found] = problems(cfg)
    assert ":5: web_password_file: " in found and "gone.pw" in found, found


# -- one broken job file spoils only itself (issue 29) ------------------------------------

def test_partial_loading_leaves_an_invalid_job_file_out_and_lists_it(cfg: ConfigDir) -> None:
    cfg.write_job("emr-files", valid_job("emr-files"))
    pacs = cfg.write_job("pacs", valid_job("pacs").replace(
        "  password_file: {pw}\ngenerations", "  password_file: /nope/pacs.pw\ngenerations"))

    config = load_config(cfg.config, partial=True)

    assert list(config.jobs) == ["emr-files"]
    [bad] = config.invalid
    assert (bad.path, bad.name, bad.label) == (pacs, "pacs", "pacs")
    assert bad.messages() == [f"{pacs}:9: repository.password_file: password file "
                              "/nope/pacs.pw does not exist"]
    assert bad.to_dict()["problems"] == [{"line": 9, "key": "repository.password_file",
                                          "message": "password file /nope/pacs.pw does not "
                                                     "exist"}]
    with pytest.raises(ConfigError):  # validate (and every whole load) still refuses it
        load_config(cfg.config)


def test_partial_loading_names_an_unreadable_file_by_its_stem(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    cfg.write_job("broken", "job: [unclosed\n")
    [bad] = load_config(cfg.config, partial=True).invalid
    assert (bad.name, bad.label) == (None, "broken")


def test_a_broken_global_configuration_still_stops_everything(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    cfg.write_job("b", valid_job("b").replace("last: 7", "last: 0"))
    cfg.config.write_text(cfg.config.read_text() + "concurrency: 0\n")
    found = problems_of(lambda: load_config(cfg.config, partial=True))
    assert found == [f"{cfg.config}:5: concurrency: must be at least 1"]


def test_duplicate_job_names_leave_both_files_out(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("same"))
    cfg.write_job("b", valid_job("same"))
    cfg.write_job("c", valid_job("c"))
    config = load_config(cfg.config, partial=True)
    assert list(config.jobs) == ["c"]
    assert [f.path.name for f in config.invalid] == ["a.yaml", "b.yaml"]


def test_select_skips_named_invalid_jobs_and_still_refuses_unknown_names(
        cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    cfg.write_job("pacs", valid_job("pacs").replace("last: 7", "last: 0"))
    config = load_config(cfg.config, partial=True)
    assert [j.name for j in config.select(["a", "pacs"], all_jobs=False)] == ["a"]
    assert [f.label for f in config.invalid_named(["a", "pacs"])] == ["pacs"]
    assert [j.name for j in config.select([], all_jobs=True)] == ["a"]
    with pytest.raises(ConfigError, match="unknown job 'typo'"):
        config.select(["a", "typo"], all_jobs=False)


def test_errors_are_sorted_by_file_and_line(cfg: ConfigDir) -> None:
    b = cfg.write_job("b", valid_job("b").replace("last: 7", "last: 0")
                      .replace("address: local", "adress: local"))
    a = cfg.write_job("a", valid_job("a") + "verify:\n  always: [/etc/passwd]\n")
    found = problems(cfg)
    where = [(p.split(":")[0], int(p.split(":")[1])) for p in found]
    assert where == sorted(where) and len(where) == 4, found
    assert [w[0] for w in where] == [str(a), str(b), str(b), str(b)], found
    assert where[-1] == (str(b), 11), found  # generations.last after host (reported first)


def problems_of(load: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load()
    return info.value.messages
