"""The `outputd` command line (DESIGN §5). Exit 0 done, 1 refused, 2 usage or config."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from outputd import states
from outputd.cli import accounts
from outputd.cli.commands import (
    cmd_backup,
    cmd_check_config,
    cmd_clear_test_data,
    cmd_event,
    cmd_fetch,
    cmd_jobs,
    cmd_pause,
    cmd_recreate,
    cmd_reopen,
    cmd_resume,
    cmd_retry,
    cmd_run,
    cmd_scan,
    cmd_show,
    cmd_status,
    cmd_submit,
    cmd_web,
)
from outputd.cli.context import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Context, Usage
from outputd.errors import ConfigError, OutputdError
from outputd.fileutil import os_reason

DEFAULT_LIMIT = 500
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
    add("web", cmd_web, "serve the HTTP API on [web] listen, in the foreground").add_argument(
        "--with-parent", action="store_true", help=argparse.SUPPRESS)  # outputd run's child
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
                   help="jobs past their ticket's due_at and not yet in a hot folder")
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
    p.add_argument("--report", metavar="FILE.pdf",
                   help="also write the preflight report as a PDF, a page per problem")
    p = add("event", cmd_event, "record an event for a job or an order",
            epilog="events: " + ", ".join(states.EVENTS))
    p.add_argument("args", nargs="+", metavar="[JOB_ID] EVENT")
    p.add_argument("--order")
    p.add_argument("--storefront", help="the order's storefront; needed where the order id "
                   "is in several")
    p.add_argument("--message", default="")
    p = add("scan", cmd_scan, "record a barcode scan at a production station",
            epilog="stations: " + ", ".join(states.STATIONS))
    p.add_argument("code", help="what the barcode reader typed (the job id)")
    p.add_argument("--station", required=True)
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
    accounts.add_parsers(sub, common)
    return parser


def _event_args(args: argparse.Namespace) -> None:
    if args.command != "event":
        return
    values = args.args
    if len(values) == 1 and values[0] not in states.EVENTS and args.order is None:
        raise Usage(f"which event for {values[0]}? outputd event {values[0]} EVENT, where "
                     f"EVENT is one of: {', '.join(states.EVENTS)}")
    if len(values) == 1:
        args.job_id, args.event = None, values[0]
    elif len(values) == 2:
        args.job_id, args.event = values
    else:
        raise Usage("usage: outputd event JOB_ID EVENT, or outputd event --order ID EVENT")
    if args.event not in states.EVENTS:
        raise Usage(f"unknown event {args.event!r}; events: {', '.join(states.EVENTS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `outputd` command; returns its exit status."""
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
    except (Usage, ConfigError) as exc:
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
        raise Usage(f"unknown status {status!r}")
