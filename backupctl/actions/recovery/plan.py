"""Everything a recovery decides before it runs: the target, the snapshot, the refusals.

`prepare` returns a frozen `Prepared` or raises a usage error (exit 2, nothing run): a bad
TARGET, an untrusted host key, a non-empty target or the job's own live source without
`--overwrite`, no restic on the target (or one older than 0.14: its version is recorded),
too little space, no proven snapshot, a `--path` the snapshot does not hold. `describe` is
the plan `--dry-run` prints (secrets masked).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backupctl.actions import repo as repos
from backupctl.actions import tunnel
from backupctl.actions.context import Context
from backupctl.actions.recovery import databases as ontos
from backupctl.actions.recovery import target as targets
from backupctl.actions.recovery.target import Probed, Target
from backupctl.actions.recovery.tree import Tree, missing_paths, nodes
from backupctl.actions.restore_test.snapshot import References, held, references
from backupctl.config.schema import Job
from backupctl.config.served import local_directory, loopback_rest
from backupctl.databases.onto import DEFAULT_DSN
from backupctl.errors import UsageError
from backupctl.execute import Runner
from backupctl.restic import s3
from backupctl.restic.run import Repo
from backupctl.secrets import display_url
from backupctl.state.recovery import proven_snapshots
from backupctl.verify.listing import SnapshotRef, pick

PROVEN, LATEST = "proven", "latest"


@dataclass(frozen=True)
class Request:
    """What the admin asked for (the command line, parsed)."""

    target: Target
    snapshot: str = PROVEN
    paths: tuple[str, ...] = ()
    overwrite: bool = False
    identity: Path | None = None
    databases: bool = False  # --databases: each dump into the target's PostgreSQL
    target_dsn: str = DEFAULT_DSN  # --target-dsn: libpq, as seen on the target
    source: str = repos.PRIMARY  # --from: the repository read (primary or a copy's name)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Prepared:
    request: Request
    target: Target  # with its user resolved
    identity: Path | None
    repo: Repo
    snap: SnapshotRef
    refs: References
    tree: Tree
    served: bool  # the repository reaches the target through the SSH tunnel
    databases: ontos.Planned | None = None  # --databases
    target_restic_version: str | None = None  # `restic version` on the target
    # the repository's rclone, started while the plan ran (owned by `opened`), or None
    early: tunnel.Early | None = field(default=None, compare=False, repr=False)

    @property
    def paths(self) -> list[str]:
        return list(self.request.paths)


def check_paths(paths: tuple[str, ...], *, job: str) -> None:
    for path in paths:
        if not path.startswith("/") or "\x00" in path:
            raise UsageError(f"{job}: --path {path!r} must be an absolute path of the "
                             "snapshot (as `restic ls` shows it)")


def check_request(request: Request, *, job: str) -> None:
    """What the command line alone can get wrong (exit 2 before anything is contacted)."""
    check_paths(request.paths, job=job)
    if request.target_dsn != DEFAULT_DSN and not request.databases:
        raise UsageError(f"{job}: --target-dsn goes with --databases; nothing was run")


def choose(ctx: Context, job: Job, repo: Repo, wanted: str) -> SnapshotRef:
    """`proven` (the newest snapshot a full verify passed that is still in the repository),
    `latest` (the newest of the job's file snapshots), or an id."""
    snapshots = held(ctx.local, repo, job=job.name, timeout=ctx.timeout)
    if wanted != PROVEN:
        found = pick(snapshots, wanted)
        if found is None:
            raise UsageError(f"{job.name}: no snapshot {wanted!r} of {job.name} in "
                             f"{repo.name} ({display_url(repo.url)}); nothing was run")
        return found
    proven = ctx.store.query(proven_snapshots, job.name, repository=repo.name)
    for snapshot_id in proven:
        found = pick(snapshots, snapshot_id)
        if found is not None:
            return found
    gone = f" ({len(proven)} proven snapshot(s) are no longer in it)" if proven else ""
    # a copy's snapshots have ids of their own: proven by a full verify read from that copy
    source = "" if repo.name == repos.PRIMARY else f" --from {repo.name}"
    raise UsageError(f"{job.name}: no snapshot of {job.name} in {repo.name} has passed a "
                     f"full verify{gone}, so none is proven; run `backupctl verify "
                     f"{job.name}{source} --mode full` first, or pass --snapshot latest (or an "
                     "id) knowingly (nothing was run)")


def servable(url: str) -> bool:
    """A repository the target cannot reach itself, or must not (an S3 copy opened with its
    credentials file: its keys stay on the orchestrator): served over the SSH connection."""
    return (local_directory(url) is not None or loopback_rest(url) is not None
            or (s3.is_s3(url) and s3.credentials_for(url) is not None))


def open_target(ctx: Context, job: Job, request: Request) -> tuple[Target, Path | None,
                                                                   Runner]:
    """The resolved target and a runner on it, not connected yet: `prepare` connects it
    (its host key checked on that connection) beside the orchestrator's own work."""
    target, identity = targets.resolve(request.target, job, identity=request.identity)
    targets.refuse_live(target, job, overwrite=request.overwrite)
    if target.is_local:
        return target, None, ctx.local
    settings = ctx.config.settings
    assert identity is not None
    return target, identity, targets.ssh_runner(
        target, job=job.name, identity=identity, known_hosts=settings.known_hosts,
        keepalive=settings.ssh_keepalive, dead_after=settings.ssh_dead_after)


@contextlib.contextmanager
def looking(ctx: Context, job: Job, runner: Runner,
            target: Target) -> Iterator[Callable[[], Probed]]:
    """The target's side of the plan on a thread of its own while the block does the
    orchestrator's (the SSH handshake and the probe overlap `restic snapshots`/`ls`);
    yields what waits for the probe. A refused host key (or no connection) is raised
    first, whatever the block raised: it comes first when the steps run one by one."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            if not target.is_local:
                targets.require_trusted(runner, target, job=job.name,
                                        known_hosts=ctx.config.settings.known_hosts)
        except BaseException as exc:  # handed to the main thread, raised there
            box["refused"] = exc
            return
        try:
            box["probed"] = targets.probe(runner, target, job=job.name, timeout=ctx.timeout)
        except BaseException as exc:
            box["failed"] = exc

    # the copied context: the thread's commands belong to this scope (a signal stops them)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,),
                              daemon=True, name="recovery-target")
    thread.start()

    def probed() -> Probed:
        thread.join()
        for failure in ("refused", "failed"):
            if failure in box:
                raise box[failure]  # type: ignore[misc]
        return box["probed"]  # type: ignore[return-value]

    try:
        yield probed
    except Exception:
        thread.join()
        if "refused" in box:
            raise box["refused"] from None  # type: ignore[misc]
        raise
    except BaseException:  # stopped (a signal): no waiting for a connection to time out
        thread.join(timeout=5)
        raise
    thread.join()
    if "refused" in box:
        raise box["refused"]  # type: ignore[misc]


def likely(ctx: Context, job: Job, repo: Repo, wanted: str) -> str | None:
    """The snapshot `choose` will most likely pick, known before restic lists them: the
    newest proven one, or a full id given (None for `latest` or a short id)."""
    if wanted == PROVEN:
        proven = ctx.store.query(proven_snapshots, job.name, repository=repo.name)
        return proven[0] if proven else None
    return wanted if re.fullmatch(r"[0-9a-f]{64}", wanted) else None


@contextlib.contextmanager
def listing_ahead(ctx: Context, job: Job, repo: Repo,
                  request: Request) -> Iterator[Callable[[str], Tree]]:
    """`nodes` of the likely snapshot on a thread while `choose` lists the snapshots (two
    restic runs, each paying its key derivation, overlap); yields what gives the tree of
    the snapshot chosen: the one listed ahead only when it is that very snapshot (restic
    names it by its full id), else listed then."""
    guess = likely(ctx, job, repo, request.snapshot)
    box: dict[str, Tree] = {}

    def list_nodes(snapshot_id: str) -> Tree:
        return nodes(ctx.local, repo, snapshot_id, job=job.name, paths=list(request.paths),
                     timeout=ctx.timeout)

    def work(snapshot_id: str) -> None:
        # a guess that fails (gone, a signal) is only a guess: listed again then, in the
        # main thread, which reports what goes wrong
        with contextlib.suppress(BaseException):
            box["tree"] = list_nodes(snapshot_id)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work, guess),
                              daemon=True, name="recovery-listing") if guess else None
    if thread is not None:
        thread.start()

    def tree_of(snapshot_id: str) -> Tree:
        if thread is not None:
            thread.join()
        ahead = box.get("tree")
        return ahead if ahead is not None and ahead.snapshot_id == snapshot_id \
            else list_nodes(snapshot_id)

    try:
        yield tree_of
    finally:
        if thread is not None:
            thread.join()  # no restic outlives the plan (a signal kills it: a quick end)


def prepare(ctx: Context, job: Job, request: Request, runner: Runner,
            target: Target, identity: Path | None, *,
            early: tunnel.Early | None = None) -> Prepared:
    """Choose and list the snapshot, look at the target; every refusal is exit 2."""
    check_request(request, job=job.name)
    repo = repos.named(job, request.source)
    with looking(ctx, job, runner, target) as probed_target, \
            listing_ahead(ctx, job, repo, request) as tree_of:
        snap = choose(ctx, job, repo, request.snapshot)
        tree = tree_of(snap.id)
        if absent := missing_paths(tree, list(request.paths)):
            raise UsageError(f"{job.name}: snapshot {snap.short_id} holds no "
                             f"{', '.join(absent)} (--path); nothing was run")
        refs = references(ctx.store, snap, job=job.name, repository=repo.name)
        probed = probed_target()
    targets.refuse(probed, target, job, overwrite=request.overwrite, needed=tree.bytes)
    planned = ontos.plan(ctx, job, runner, snap=snap, refs=refs, dsn=request.target_dsn,
                         shown=target.display()) if request.databases else None
    return Prepared(request, target, identity, repo, snap, refs, tree,
                    served=served(target, repo.url), databases=planned,
                    target_restic_version=probed.restic_version, early=early)


def served(target: Target, url: str) -> bool:
    """The repository (`url`, as the orchestrator reaches it) is served to the target."""
    return not target.is_local and servable(url)


@contextlib.contextmanager
def opened(ctx: Context, job: Job, request: Request) -> Iterator[tuple[Prepared, Runner]]:
    """`prepare`d, with what the recovery keeps open until the block ends: the runner on
    the target (closed after) and, for a repository served to it, rclone started before
    the plan (it listens on the orchestrator's loopback only until the restore forwards
    it; stopped after), so its start overlaps the plan."""
    repos.check_name(job, request.source)  # exit 2 naming the job's copies, nothing run
    target, identity, runner = open_target(ctx, job, request)
    url = repos.named(job, request.source).url  # an S3 copy's keys registered: rclone's
    try:
        with (tunnel.started(url) if served(target, url)
              else contextlib.nullcontext()) as early:
            yield prepare(ctx, job, request, runner, target, identity, early=early), runner
    finally:
        if runner is not ctx.local:
            runner.close()


def source_url(job: Job, source: str) -> str:
    """The repository `--from` names as the orchestrator reaches it (no secret read)."""
    repos.check_name(job, source)
    return (job.repository.orchestrator_url if source == repos.PRIMARY
            else job.copy_named(source).url)


def describe(job: Job, request: Request) -> list[str]:
    """The plan (--dry-run): what would run where; no secret, nothing contacted."""
    target = request.target
    url = source_url(job, request.source)
    where = "orchestrator" if target.is_local else target.display()
    lines = [f"repository: {request.source} ({display_url(url)})",
             f"snapshot: {request.snapshot}" + (
        " (the newest snapshot whose full verify passed)" if request.snapshot == PROVEN
        else ""),
        f"target: {target.display()}" + (" (--overwrite)" if request.overwrite else
                                         " (must be new or empty)")]
    keyed = request.source != repos.PRIMARY and \
        job.copy_named(request.source).s3_credentials_file is not None
    if not target.is_local and (servable(url) or keyed):
        keys = " (the S3 keys in its environment only)" if s3.is_s3(url) else ""
        lines += [f"on orchestrator: rclone serve restic --append-only --addr "
                  f"127.0.0.1:<port> --htpasswd <pipe: one-time credential> {display_url(url)}"
                  f"{keys} (stops with the run)" if loopback_rest(url) is None else
                  f"on orchestrator: {display_url(url)} (its own server)",
                  f"ssh {target.display()}: remote port forward, its 127.0.0.1:<port> → "
                  "orchestrator (closed when the run ends)"]
        url = "rest:http://backupctl:<one-time>@127.0.0.1:<port>/"
    includes = "".join(f" --include {p}" for p in request.paths)
    lines += [f"on {where}: restic --repository-file <{display_url(url)}> --password-file "
              f"<pipe> --no-cache --no-lock restore --target {target.path}{includes} "
              "<snapshot>",
              f"on {where}: owners by name (chown -h where the uid differs), then the proof: "
              "every node's type, size, mode, owner, group; SHA-256 of every referenced file",
              *([ontos.describe(request.target_dsn)] if request.databases else []),
              "record: run and evidence record of kind recovery (restore_ms = the real RTO)"]
    return lines
