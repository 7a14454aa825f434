"""The `outputd` command line (DESIGN §5). Exit 0 done, 1 refused, 2 usage or config."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outputd import states
from outputd.configfile import ConfigFile, read_config_file
from outputd.errors import ConfigError, DeliveryError, OutputdError, RequestRefused
from outputd.fileutil import os_reason, private_temp
from outputd.logs import counted
from outputd.model import JobFilter, iso
from outputd.ops.view import job_object, late_jobs, render, render_header, render_row
from outputd.store import SqlStore, open_store

if TYPE_CHECKING:
    from outputd.config import Config
    from outputd.layout import Layout

# `show` and `jobs` only read the store: they neither validate the whole config nor load
# the pydantic models (about 100 ms of every command). The other commands import what
# they need when they run.

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 500


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


class Context:
    """The config, store and folders a command works on, opened on first use.

    The config is validated up front unless the command only reads the store; then only
    the keys that locate the store are read, and a store that does not exist yet is not
    made (a `sudo outputd jobs` before the first start would leave root's file behind).
    """

    def __init__(self, config_path: str | None, *, reads_only: bool = False) -> None:
        self._reads_only = reads_only
        self._file: ConfigFile = read_config_file(config_path)
        self._config: Config | None = None
        self._layout: Layout | None = None
        self._store: SqlStore | None = None
        if not reads_only:
            self.config  # noqa: B018 (a bad config is refused before anything is done)

    @property
    def config(self) -> Config:
        if self._config is None:
            from outputd.config import validate

            self._config = validate(self._file)
        return self._config

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            from outputd.layout import Layout

            self._layout = Layout(self.config)
        return self._layout

    @property
    def store(self) -> SqlStore:
        if self._store is None:
            url = self._config.store.url if self._config else self._file.quick_store_url()
            self._store = open_store(url, create=not self._reads_only)
        return self._store


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    from outputd.daemon import node as daemon

    return daemon.run(ctx.config, getattr(args, "config", None))


def cmd_submit(ctx: Context, args: argparse.Namespace) -> int:
    from outputd.daemon.nodes import node_id
    from outputd.intake.accept import Intake

    data = Path(args.ticket).read_bytes()
    ctx.layout.create()
    from outputd.notifications import policy

    owed = policy(ctx.config.notify)
    outcome = Intake(ctx.store, ctx.layout, node_id(), owed).submit(data, _who())
    if outcome.result == "duplicate":
        print(f"job {outcome.job_id}: {outcome.reason}")
    elif outcome.result == "event":
        print(f"event recorded for {outcome.job_id}")
    else:
        print(f"accepted job {outcome.job_id}")
    return EXIT_OK


def cmd_jobs(ctx: Context, args: argparse.Namespace) -> int:
    query = JobFilter(
        status=args.status, order_id=args.order, storefront=args.storefront,
        product_type=args.type, search=args.search, history_status=args.history_status,
        # Cancelled jobs are left out, as on the storefront's screen, unless asked for.
        cancelled=None if args.cancelled or args.status or args.history_status else False,
        test_mode=args.test_mode,
        payment_status=args.payment_status, approval=args.approval, limit=args.limit,
    )
    jobs = late_jobs(ctx.store, query, time.time()) if args.late else ctx.store.list_jobs(query)
    paused = {name for name, st in ctx.store.hotfolder_states().items() if st["paused"]}
    bodies = [job_object(ctx.store, job, full=args.json, paused=paused) for job in jobs]
    if args.json:
        _print_json(bodies)
        return EXIT_OK
    if bodies:
        print(render_header())
    for body in bodies:
        print(render_row(body))
    total = len(bodies) if args.late else ctx.store.count_jobs(
        JobFilter(**{**query.__dict__, "limit": None}))
    if total > len(bodies):
        print(f"(showing {len(bodies)} of {total}; use --limit)", file=sys.stderr)
    return EXIT_OK


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    body = job_object(ctx.store, ctx.store.get_job(args.job_id))
    if args.json:
        _print_json(body)
    else:
        print(render(body))
    return EXIT_OK


def _request(ctx: Context, job_id: str | None, order_id: str | None, event: str,
             message: str = "", storefront: str | None = None) -> int:
    from outputd.ops import events as commands

    ids = commands.target_jobs(ctx.store, job_id, order_id, storefront)
    done = commands.record_event(ctx.store, ctx.layout, ids, event, _who(), message)
    said = []
    if done.jobs:
        said.append(f"{event} recorded for {', '.join(done.jobs)}")
    if done.already:
        said.append(f"already so for {', '.join(done.already)} (nothing to do)")
    if done.refused:
        said.append("not allowed for " + "; ".join(done.refused))
    print("; ".join(said))
    return EXIT_OK


def cmd_event(ctx: Context, args: argparse.Namespace) -> int:
    if (args.job_id is None) == (args.order is None):
        raise _Usage("name a job (outputd event JOB_ID EVENT) or an order (--order ID)")
    if args.event == "renotify" and not ctx.config.notify.webhooks:
        raise RequestRefused("renotify sends webhooks, and none is configured")
    return _request(ctx, args.job_id, args.order, args.event, args.message or "",
                    args.storefront)


def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    if (args.job_id is None) == (args.hotfolder is None):
        raise _Usage("name a job (outputd retry JOB_ID) or a hot folder (--hotfolder NAME)")
    if args.job_id is not None:
        return _request(ctx, args.job_id, None, "retry")
    from outputd.ops import events as commands

    name = _hotfolder(ctx, args.hotfolder)
    ids = ctx.store.failed_at(name)
    if not ids:
        raise RequestRefused(f"no job has a failed delivery to {name}")
    recorded = commands.record_event(ctx.store, ctx.layout, ids, "retry", _who()).jobs
    print(f"retry recorded for {counted(len(recorded), 'job')}: {', '.join(recorded)}")
    return EXIT_OK


def cmd_recreate(ctx: Context, args: argparse.Namespace) -> int:
    return _request(ctx, args.job_id, None, "recreate")


def cmd_reopen(ctx: Context, args: argparse.Namespace) -> int:
    return _request(ctx, args.job_id, None, "reopen")


def cmd_fetch(ctx: Context, args: argparse.Namespace) -> int:
    from outputd.ops.fetch import fetch_outputs

    for path in fetch_outputs(ctx.store, args.job_id, Path(args.folder)):
        print(path)
    return EXIT_OK


def _hotfolder(ctx: Context, name: str) -> str:
    if name not in ctx.config.hotfolders:
        raise RequestRefused(f"there is no hot folder {name} in the config")
    return name


def cmd_pause(ctx: Context, args: argparse.Namespace) -> int:
    ctx.store.set_paused(_hotfolder(ctx, args.hotfolder), True)
    print(f"deliveries to {args.hotfolder} are paused")
    return EXIT_OK


def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    ctx.store.set_paused(_hotfolder(ctx, args.hotfolder), False)
    ctx.store.wake_paused(args.hotfolder)
    print(f"deliveries to {args.hotfolder} resume")
    return EXIT_OK


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from outputd.ops import status as statusreport

    body = statusreport.build(ctx.config, ctx.store)
    if args.json:
        _print_json(body)
    else:
        print(statusreport.render(body))
    return EXIT_OK


def cmd_clear_test_data(ctx: Context, args: argparse.Namespace) -> int:
    if not args.export:
        raise RequestRefused(
            "clear-test-data needs --export FILE: the test jobs are written there first")
    store = ctx.store
    jobs = store.list_jobs(JobFilter(storefront=args.storefront, test_mode=True))
    now = iso(time.time())
    exported = []
    for job in jobs:
        body = job_object(store, job)
        body["history"].append({"at": now, "status": states.JOB_DATA_DELETED,
                                "message": "test data cleared", "by": _who()})
        exported.append(body)
    target = Path(args.export)
    with private_temp(target) as temp:
        with open(temp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(exported, indent=2, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, target)  # never replaces: an earlier export is the only record
        except FileExistsError:
            raise _Usage(f"{target} exists; clear-test-data never replaces an export, so "
                         "name a new file") from None
    ids = [job.job_id for job in jobs]
    store.remove_jobs(ids)
    for job_id in ids:
        ctx.layout.clear_work(job_id)
        ctx.layout.remove_sources(job_id)
    print(f"exported {counted(len(ids), 'test job')} of {args.storefront} to {target} and "
          f"removed {'it' if len(ids) == 1 else 'them'}")
    return EXIT_OK


def cmd_backup(ctx: Context, args: argparse.Namespace) -> int:
    path = ctx.config.sqlite_path
    if path is None:
        raise RequestRefused("backup copies a SQLite store; for PostgreSQL use pg_dump")
    import sqlite3

    target = Path(args.file)
    with private_temp(target) as temp:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        copy = sqlite3.connect(temp)
        try:
            source.backup(copy)  # SQLite's online backup: consistent while the daemon writes
        finally:
            copy.close()
            source.close()
        os.replace(temp, target)
    print(f"backed up {path} to {target}")
    return EXIT_OK


def cmd_check_config(ctx: Context, args: argparse.Namespace) -> int:
    from outputd.notifications import email, webhook
    from outputd.transports import make_transport

    print(f"config {ctx.config.source} is valid")
    failed = 0
    for name, cfg in ctx.config.hotfolders.items():
        if cfg.kind == "local" and os.geteuid() == 0 and not Path(cfg.path).exists():
            print(f"  {name}: {cfg.path} is not there yet; not made now, since as root it "
                  "would belong to root: outputd makes it at its first delivery as its own "
                  "user (or see operations.md for its owner and mode)")
            continue
        try:
            with make_transport(name, cfg) as transport:
                transport.probe()
            print(f"  {name}: ok ({cfg.kind} {cfg.path})")
        except (DeliveryError, ConfigError) as exc:
            failed += 1
            print(f"  {name}: FAILED: {exc}")
    for hook in ctx.config.notify.webhooks:
        try:
            print(f"  webhook {webhook.shown(hook.url)}: {webhook.probe(hook)}")
        except DeliveryError as exc:
            failed += 1
            print(f"  webhook {webhook.shown(hook.url)}: FAILED: {exc}")
    mail = ctx.config.notify.email
    if mail.smtp_host:
        try:
            print(f"  smtp {mail.smtp_host}:{mail.smtp_port}: {email.probe(mail)}")
        except DeliveryError as exc:
            failed += 1
            print(f"  smtp {mail.smtp_host}:{mail.smtp_port}: FAILED: {exc}")
    return EXIT_REFUSED if failed else EXIT_OK


class _Usage(Exception):
    pass


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("outputd")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="config file (default: $OUTPUTD_CONFIG, else config/outputd.toml)")
    parser = argparse.ArgumentParser(prog="outputd", parents=[common],
                                     description="Print-output daemon and its operator tools.")
    parser.add_argument("--version", action="version", version=f"outputd {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[Context, argparse.Namespace], int], help: str,
            reads_only: bool = False, epilog: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, epilog=epilog)
        p.set_defaults(func=func, reads_only=reads_only)
        return p

    add("run", cmd_run, "run the daemon in the foreground")
    add("submit", cmd_submit, "accept a ticket as the intake folder would").add_argument("ticket")
    p = add("jobs", cmd_jobs, "list and search jobs", reads_only=True)
    p.add_argument("--status")
    p.add_argument("--order")
    p.add_argument("--storefront")
    p.add_argument("--type", choices=["static", "multipart", "megaedit"])
    p.add_argument("--search", help="matches job id, order id, username and email")
    p.add_argument("--history-status", help="jobs that ever had this status")
    p.add_argument("--cancelled", action="store_true",
                   help="include cancelled jobs (left out by default)")
    p.add_argument("--payment-status", help='e.g. "Paid" or "Pending"')
    p.add_argument("--late", action="store_true",
                   help="jobs past their ticket's due_at and not yet shipped or completed")
    p.add_argument("--approval", choices=["NotRequired", "AwaitingApproval", "Approved",
                                          "Rejected"])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--test-mode", dest="test_mode", action="store_const", const=True,
                      help="only test-mode jobs")
    mode.add_argument("--live", dest="test_mode", action="store_const", const=False,
                      help="only live jobs")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    p.add_argument("--json", action="store_true")
    p = add("show", cmd_show, "one job in full", reads_only=True)
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true")
    p = add("event", cmd_event, "record an event for a job or an order",
            epilog="events: " + ", ".join(states.EVENTS))
    p.add_argument("args", nargs="+", metavar="[JOB_ID] EVENT")
    p.add_argument("--order")
    p.add_argument("--storefront", help="the order's storefront; needed where the order id "
                   "is in several")
    p.add_argument("--message", default="")
    p = add("retry", cmd_retry, "re-run a failed validation, output or delivery")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--hotfolder", help="every job whose delivery to this hot folder failed")
    for name, func, text in (
        ("recreate", cmd_recreate, "make and deliver new output"),
        ("reopen", cmd_reopen, "bring back a cleaned-up job"),
    ):
        add(name, func, text).add_argument("job_id")
    p = add("fetch", cmd_fetch, "copy a job's outputs into a folder", reads_only=True)
    p.add_argument("job_id")
    p.add_argument("folder")
    add("pause", cmd_pause, "hold deliveries to a hot folder").add_argument("hotfolder")
    add("resume", cmd_resume, "resume deliveries to a hot folder").add_argument("hotfolder")
    add("status", cmd_status, "counts, queue and hot folder health").add_argument(
        "--json", action="store_true")
    p = add("clear-test-data", cmd_clear_test_data,
            "export a storefront's test jobs to a file, then remove them")
    p.add_argument("storefront")
    p.add_argument("--export", metavar="FILE")
    add("backup", cmd_backup, "copy the SQLite store while the daemon runs").add_argument("file")
    add("check-config", cmd_check_config, "validate the config and probe every hot folder")
    return parser


def _event_args(args: argparse.Namespace) -> None:
    if args.command != "event":
        return
    values = args.args
    if len(values) == 1 and values[0] not in states.EVENTS and args.order is None:
        raise _Usage(f"which event for {values[0]}? outputd event {values[0]} EVENT, where "
                     f"EVENT is one of: {', '.join(states.EVENTS)}")
    if len(values) == 1:
        args.job_id, args.event = None, values[0]
    elif len(values) == 2:
        args.job_id, args.event = values
    else:
        raise _Usage("usage: outputd event JOB_ID EVENT, or outputd event --order ID EVENT")
    if args.event not in states.EVENTS:
        raise _Usage(f"unknown event {args.event!r}; events: {', '.join(states.EVENTS)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _event_args(args)
        if getattr(args, "status", None) and args.command == "jobs":
            _known_status(args.status)
        if getattr(args, "history_status", None):
            _known_status(args.history_status)
        ctx = Context(getattr(args, "config", None), reads_only=args.reads_only)
        return int(args.func(ctx, args))
    except (_Usage, ConfigError) as exc:
        print(f"outputd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OutputdError as exc:  # a refused request, a refused ticket
        print(f"outputd: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:  # `outputd jobs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except FileNotFoundError as exc:
        print(f"outputd: {exc.filename}: no such file or folder", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"outputd: {where}{os_reason(exc)}", file=sys.stderr)
        return EXIT_REFUSED


def _known_status(status: str) -> None:
    if status not in states.ALL | states.NOTES:
        raise _Usage(f"unknown status {status!r}")
