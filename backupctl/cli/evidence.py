"""Commands of the evidence capability: `report` and `evidence verify|export|head`.

Registered on the shared typer app. No logic here: backupctl.evidence does the work.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from backupctl.actions import anchors
from backupctl.actions.context import Context
from backupctl.cli.common import (
    JsonOpt,
    context,
    emit_json,
    exit_with,
    input_file,
    load,
    out,
    output_file,
    say,
)
from backupctl.config.validate import Config
from backupctl.errors import BackupctlError, UsageError
from backupctl.evidence import audit as audits
from backupctl.evidence import chain
from backupctl.evidence import report as reports
from backupctl.evidence.period import Period
from backupctl.execute import Secret
from backupctl.files import write_atomic
from backupctl.secrets import read_secret
from backupctl.signing import init_key, public_path
from backupctl.state.db import Store
from backupctl.status import ExitStatus

app = typer.Typer()
evidence_app = typer.Typer(no_args_is_help=True, help="Audit evidence: verify the hash chain, "
                           "export an encrypted bundle for an inspector, anchor the head.")
app.add_typer(evidence_app, name="evidence")

FromOpt = Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (local time)")]
ToOpt = Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (inclusive)")]
LangOpt = Annotated[str, typer.Option("--lang", help="ja or en")]
PasswordOpt = Annotated[Path | None, typer.Option(
    "--password-file", help="file whose first line is the bundle password (default: ask on "
    "the terminal, without echo)")]
AnchorOpt = Annotated[Path | None, typer.Option(
    "--anchor", help="anchor file (TIME seq=N HASH per line) kept outside the database")]
MIN_PASSWORD = 8


@app.command("report")
def report_command(
    date_from: FromOpt, date_to: ToOpt, lang: LangOpt = "ja",
    fmt: Annotated[str, typer.Option("--format", help="html, pdf, csv or json")] = "html",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here "
                                                "(default: stdout)")] = None,
    summary: Annotated[bool, typer.Option(
        "--summary", help="only the one-page management summary (html or pdf)")] = False,
) -> None:
    """The inspector's report for a period, from the evidence records (exit 3: chain broken)."""
    from backupctl.evidence import render  # Jinja2 (and WeasyPrint for PDF) only here

    if fmt not in render.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(render.FORMATS)}, not {fmt!r}")
    if summary and fmt not in ("html", "pdf"):
        raise UsageError(f"--summary is a page: use --format html or pdf, not {fmt!r}")
    Period.parse(date_from, date_to)  # a bad date is a usage error before anything else
    if output is None and fmt == "pdf" and sys.stdout.isatty():
        raise UsageError("a PDF is not for the terminal: give -o FILE.pdf")
    if output is not None:
        output_file(output)
    config = load()
    period = Period.parse(date_from, date_to, tz=config.settings.tz)  # days of `timezone`
    data = reports.build(config=config, store=context(config).store, period=period, lang=lang)
    body = render.render(data, fmt, summary_only=summary)
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        _write(output, body)
        say(f"report written to {output} ({len(body)} bytes, {data['records_in_period']} "
            "records)")
    if not data["chain"]["verified"]:
        say(f"EVIDENCE CHAIN DOES NOT VERIFY: {data['chain']['problem']}")
        exit_with(ExitStatus(data["chain"]["exit_code"]))


def _write(path: Path, body: bytes) -> None:
    """Reports name jobs, hosts and file paths: readable by their owner only."""
    try:
        write_atomic(path, body, mode=0o600)
    except OSError as exc:
        raise BackupctlError(f"cannot write {path}: {exc.strerror or exc}") from None


def _password(path: Path | None, *, confirm: bool) -> Secret:
    """From a file, or asked without echo on a terminal; never from argv or environment."""
    if path is not None:
        try:
            return read_secret(path, what="bundle password file")
        except BackupctlError as exc:
            raise UsageError(str(exc)) from None
    if not sys.stdin.isatty():
        raise UsageError("no bundle password: give --password-file FILE (or run on a terminal "
                         "to be asked)")
    first = getpass.getpass("Bundle password: ")
    if confirm and getpass.getpass("Repeat the password: ") != first:
        raise UsageError("the passwords differ; nothing was written")
    if not first:
        raise UsageError("empty password")
    return Secret(first)


def _audit(config: Config, store: Store, anchor: Path | None, *, new_ok: bool = False,
           pin_required: bool = True) -> audits.Audit:
    files = [] if anchor is None or (new_ok and not anchor.exists()) else [anchor]
    return audits.of_config(config, store, anchor_files=files, pin_required=pin_required)


def _say_problems(problems: list[chain.Problem], *, after: str = "") -> None:
    for problem in problems:
        head = (f"EVIDENCE CHAIN BROKEN ({problem.what})" if problem.proven
                else "EVIDENCE CANNOT BE PROVEN")
        say(f"{head}: {problem.message}{after}")


AgainstOpt = Annotated[list[str] | None, typer.Option(
    "--against", help="also compare with the evidence anchored in this immutable copy (COPY "
    "or JOB:COPY); repeatable")]


@evidence_app.command("verify")
def verify_command(
    bundle_file: Annotated[Path | None, typer.Argument(
        metavar="[FILE.zip]", help="an exported bundle", show_default=False)] = None,
    db: Annotated[bool, typer.Option("--db", help="walk the whole chain in the state "
                                     "database")] = False,
    password_file: PasswordOpt = None, anchor: AnchorOpt = None,
    against: AgainstOpt = None, as_json: JsonOpt = False,
) -> None:
    """Check the evidence (--db: chain, signatures, every run's record, anchors) or an
    exported bundle (FILE.zip); exit 3: changed, names the first bad record."""
    if (bundle_file is None) == (not db):
        raise UsageError("give either FILE.zip or --db")
    if bundle_file is not None:
        input_file(bundle_file, "bundle")
        _verify_bundle(bundle_file, _password(password_file, confirm=False), as_json=as_json)
    if anchor is not None:
        input_file(anchor, "anchor file")
    config = load()
    ctx = context(config)
    files = [f for f in (anchor, config.settings.evidence_anchor_file) if f is not None]
    copies = [found for name in against or [] for found in anchors.anchored_copies(ctx, name)]
    result = audits.of_config(config, ctx.store, anchor_files=files, copies=copies)
    status = result.status
    if as_json:
        emit_json({"command": "evidence verify", **result.to_dict(), "exit_code": int(status)})
    elif result.ok:
        out.print(_verified(result), markup=False)
    else:
        _say_problems(result.problems)
    exit_with(status)


def _verified(result: audits.Audit) -> str:
    check = result.check
    if check.signed:
        keys = ", ".join(f"{n} with {fp}" for fp, n in check.signers.items())
        signed = f"{check.signed} signed ({keys})"
    else:
        signed = "NOT signed" + ("" if result.key_fingerprint else
                                 ": no evidence key (run backupctl evidence init-key)")
    pinned = (f"head pin seq {result.pinned.seq} matches" if result.pinned
              else "no head pin (nothing signed with this orchestrator's key yet)")
    return (f"evidence chain OK: {check.count} records ({signed}), head seq "
            f"{check.head_seq} {check.head}; every finished run has its record; {pinned}; "
            f"{result.anchors} anchored head(s) match"
            + (f" ({', '.join(result.sources)})" if result.sources else ""))


@evidence_app.command("init-key")
def init_key_command(as_json: JsonOpt = False) -> None:
    """Make the Ed25519 key that signs every evidence record (evidence_key; never replaced)."""
    config = load()
    public = init_key(config.settings.evidence_key)
    if as_json:
        emit_json({"command": "evidence init-key", "key": str(config.settings.evidence_key),
                   "public_key": public.pem, "fingerprint": public.fingerprint})
        return
    say(f"evidence key written to {config.settings.evidence_key} (0600) and its public key to "
        f"{public_path(config.settings.evidence_key)}")
    say(f"fingerprint: {public.fingerprint} — write it down, print it in the yearly report "
        "and keep a copy of the public key elsewhere: it is how an inspector knows the "
        "records are yours")


def _verify_bundle(path: Path, password: Secret, *, as_json: bool) -> NoReturn:
    from backupctl.evidence import bundle  # pyzipper + Cryptodome: imported only when needed

    result = bundle.verify(path, password)
    status = result.status
    if as_json:
        emit_json({"command": "evidence verify", **result.to_dict(), "exit_code": int(status)})
    elif result.ok:
        signed = (f"signed with evidence key {result.key_fingerprint} (compare it with the one "
                  "you were given separately)" if result.key_fingerprint else "NOT signed")
        out.print(f"{path}: OK — password, AES-256 encryption, every file in "
                  f"{bundle.SUMS}, {result.count} chained records ending at {result.head}, "
                  f"{signed}; fingerprint ({bundle.SUMS} SHA-256) {result.fingerprint}",
                  markup=False)
    else:
        for problem in result.problems:
            say(f"{path}: {problem}")
        for problem in result.unproven:
            say(f"{path}: CANNOT BE PROVEN: {problem}")
    exit_with(status)


@evidence_app.command("export")
def export_command(
    date_from: FromOpt, date_to: ToOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="the bundle, FILE.zip")],
    password_file: PasswordOpt = None, lang: LangOpt = "ja", as_json: JsonOpt = False,
) -> None:
    """AES-256 zip of a period's records, report (PDF+HTML), chain head, SHA-256 list."""
    from backupctl.evidence import bundle  # pyzipper + Cryptodome: imported only when needed

    Period.parse(date_from, date_to)  # a bad date is a usage error before anything else
    output_file(output)
    config = load()
    period = Period.parse(date_from, date_to, tz=config.settings.tz)  # days of `timezone`
    password = _password(password_file, confirm=True)
    if len(password.reveal()) < MIN_PASSWORD:
        raise UsageError(f"the bundle password must have at least {MIN_PASSWORD} characters")
    result = bundle.export(config=config, store=context(config).store, period=period,
                           lang=lang, out=output, password=password)
    if as_json:
        emit_json({"command": "evidence export", **result.to_dict()})
    else:
        say(f"{output}: {result.count} records, head {result.head}")
        say(f"fingerprint (SHA-256 of {bundle.SUMS}): {result.fingerprint} — write it down or "
            "send it separately from the bundle and the password")
    if not result.chain_verified:
        say("EVIDENCE CHAIN DOES NOT VERIFY: see the report's first finding")
        exit_with(result.status)


@evidence_app.command("head")
def head_command(
    anchor: AnchorOpt = None, as_json: JsonOpt = False,
    write_pin: Annotated[bool, typer.Option(
        "--pin", help="also write the signed head pin beside the evidence key (once after "
        "an upgrade; every run writes it)")] = False,
) -> None:
    """Verify the chain and print its head; with --anchor, also append it to that file."""
    config = load()
    ctx = context(config)
    # --pin: the pin is what is missing after an upgrade; everything else must hold.
    result = _audit(config, ctx.store, anchor, new_ok=True, pin_required=not write_pin)
    if not result.ok:
        _say_problems(result.problems, after="; nothing anchored")
        exit_with(result.status)
    check = result.check
    line = chain.Anchor(at=ctx.store.now(), seq=check.head_seq or 0, hash=check.head)
    if anchor is not None:
        try:
            with anchor.open("a", encoding="utf-8") as handle:
                handle.write(line.line())
        except OSError as exc:
            raise BackupctlError(f"cannot append to {anchor}: {exc.strerror or exc}") from None
    pinned = _pin_head(ctx, check) if write_pin else None
    if as_json:
        emit_json({"command": "evidence head", "at": line.at, "seq": line.seq,
                   "head": line.hash, "count": check.count,
                   "anchor": str(anchor) if anchor else None,
                   "pin": str(pinned) if pinned else None})
    else:
        out.print(line.line().rstrip("\n"), markup=False)


def _pin_head(ctx: Context, check: chain.ChainCheck) -> Path:
    """Write the head pin for the verified head (`evidence head --pin`)."""
    from backupctl.evidence import pin

    signer = ctx.signer
    if signer is None or signer.path is None:
        raise UsageError(f"no evidence key at {ctx.config.settings.evidence_key}: nothing to "
                         "sign the head pin with (run backupctl evidence init-key)")
    if check.head_seq is None:
        raise UsageError("the evidence chain is empty: there is no head to pin yet")
    if not check.signed:
        raise UsageError("no record is signed yet: the first run after init-key writes the pin")
    try:
        written = pin.move(ctx.store, signer, chain.Entry(check.head_seq, {"hash": check.head}))
    except (OSError, pin.PinError) as exc:
        raise BackupctlError(f"cannot write the head pin: {exc}") from None
    if written is None:
        raise BackupctlError(f"the head pin {pin.path_for(signer.path)} is newer than this "
                             "head or does not match it; it is kept (see evidence verify --db)")
    return pin.path_for(signer.path)
