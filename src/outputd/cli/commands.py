"""The commands of `outputd` (DESIGN §5): each parses its arguments, calls one
operation (outputd.ops) as the local user, and prints the result."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from outputd.cli import render
from outputd.cli.context import EXIT_OK, EXIT_REFUSED, Context, Usage
from outputd.errors import ConfigError, DeliveryError, RequestRefused
from outputd.fileutil import private_temp
from outputd.logs import counted
from outputd.model import JobFilter
from outputd.ops import jobs


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd run`: the daemon in the foreground until SIGTERM."""
    from outputd.daemon import node as daemon

    return daemon.run(ctx.config, getattr(args, "config", None))


def cmd_web(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd web`: the HTTP API on `[web] listen`, in the foreground."""
    from outputd.web.server import serve

    return serve(ctx.config, with_parent=args.with_parent)


def cmd_submit(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd submit TICKET`: hand over a ticket as the intake folder would."""
    from outputd.daemon.nodes import node_id
    from outputd.intake.accept import Intake
    from outputd.notifications import policy

    data = Path(args.ticket).read_bytes()
    ctx.layout.create()
    intake = Intake(ctx.store, ctx.layout, node_id(), policy(ctx.config.notify))
    outcome = intake.submit(data, ctx.caller)
    if outcome.result == "duplicate":
        print(f"job {outcome.job_id}: {outcome.reason}")
    elif outcome.result == "event":
        print(f"event recorded for {outcome.job_id}")
    else:
        print(f"accepted job {outcome.job_id}")
    return EXIT_OK


def cmd_jobs(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd jobs`: list and search jobs, as rows or JSON."""
    query = JobFilter(
        status=args.status, order_id=args.order, storefront=args.storefront,
        product_type=args.type, search=args.search, history_status=args.history_status,
        # Cancelled jobs are left out, as on the storefront's screen, unless asked for.
        cancelled=None if args.cancelled or args.status or args.history_status else False,
        test_mode=args.test_mode,
        payment_status=args.payment_status, approval=args.approval, limit=args.limit,
    )
    bodies, total = jobs.search(ctx.store, ctx.caller, query, late=args.late, full=args.json)
    if args.json:
        _print_json(bodies)
        return EXIT_OK
    if bodies:
        print(render.render_header())
    for body in bodies:
        print(render.render_row(body))
    if total > len(bodies):
        print(f"(showing {len(bodies)} of {total}; use --limit)", file=sys.stderr)
    return EXIT_OK


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd show JOB`: one job in full."""
    body = jobs.show(ctx.store, ctx.caller, args.job_id)
    if args.json:
        _print_json(body)
    else:
        print(render.render(body))
    if args.report:
        from outputd.ops.prepress import write_report

        pages = write_report(ctx.config, ctx.store, ctx.layout, ctx.caller, args.job_id,
                             Path(args.report))
        print(f"preflight report written to {args.report} ({pages} pages)", file=sys.stderr)
    return EXIT_OK


def _request(ctx: Context, job_id: str | None, order_id: str | None, event: str,
             message: str = "", storefront: str | None = None) -> int:
    from outputd.ops import events

    ids = events.target_jobs(ctx.store, ctx.caller, job_id, order_id, storefront)
    done = events.record_event(ctx.store, ctx.layout, ctx.caller, ids, event, message)
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
    """`outputd event [JOB] EVENT`: record an event for a job or an order."""
    if (args.job_id is None) == (args.order is None):
        raise Usage("name a job (outputd event JOB_ID EVENT) or an order (--order ID)")
    if args.event == "renotify" and not ctx.config.notify.webhooks:
        raise RequestRefused("renotify sends webhooks, and none is configured")
    return _request(ctx, args.job_id, args.order, args.event, args.message or "",
                    args.storefront)


def cmd_scan(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd scan CODE --station STATION`: a scan at a production station."""
    from outputd.ops.scan import scan

    done = scan(ctx.store, ctx.layout, ctx.caller, args.code, args.station)
    if done.jobs:
        print(f"{args.station} recorded for {done.jobs[0]}")
    else:
        print(f"{done.already[0]} is at {args.station} already (nothing to do)")
    return EXIT_OK


def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd retry`: re-run a failed job, or every failed delivery to a hot folder."""
    if (args.job_id is None) == (args.hotfolder is None):
        raise Usage("name a job (outputd retry JOB_ID) or a hot folder (--hotfolder NAME)")
    if args.job_id is not None:
        return _request(ctx, args.job_id, None, "retry")
    from outputd.ops import events

    recorded = events.retry_hotfolder(ctx.store, ctx.layout, ctx.caller, args.hotfolder,
                                      list(ctx.config.hotfolders))
    print(f"retry recorded for {counted(len(recorded), 'job')}: {', '.join(recorded)}")
    return EXIT_OK


def cmd_recreate(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd recreate JOB`: make and deliver new output."""
    return _request(ctx, args.job_id, None, "recreate")


def cmd_reopen(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd reopen JOB`: bring back a cleaned-up job."""
    return _request(ctx, args.job_id, None, "reopen")


def cmd_fetch(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd fetch JOB FOLDER`: copy a job's outputs into a folder."""
    for path in jobs.fetch(ctx.store, ctx.caller, args.job_id, Path(args.folder)):
        print(path)
    return EXIT_OK


def cmd_pause(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd pause HOTFOLDER`: hold deliveries to a hot folder."""
    from outputd.ops import events

    events.pause(ctx.store, ctx.caller, args.hotfolder, list(ctx.config.hotfolders), True)
    print(f"deliveries to {args.hotfolder} are paused")
    return EXIT_OK


def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd resume HOTFOLDER`: let deliveries to a hot folder go on."""
    from outputd.ops import events

    events.pause(ctx.store, ctx.caller, args.hotfolder, list(ctx.config.hotfolders), False)
    print(f"deliveries to {args.hotfolder} resume")
    return EXIT_OK


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd status`: counts, queue, hot folders, free space."""
    from outputd.intake.accept import waiting_tickets
    from outputd.ops import status

    waiting = waiting_tickets(ctx.config.daemon.intake_dir, time.time() - status.INTAKE_WAITING_S)
    body = status.build(ctx.config, ctx.store, waiting)
    if args.json:
        _print_json(body)
    else:
        print(render.render_status(body))
    return EXIT_OK


def cmd_clear_test_data(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd clear-test-data STOREFRONT --export FILE`."""
    if not args.export:
        raise RequestRefused(
            "clear-test-data needs --export FILE: the test jobs are written there first")
    target = Path(args.export)
    try:
        ids = jobs.clear_test_data(ctx.store, ctx.layout, ctx.caller, args.storefront, target)
    except jobs.ExportExists as exc:
        raise Usage(str(exc)) from None
    print(f"exported {counted(len(ids), 'test job')} of {args.storefront} to {target} and "
          f"removed {'it' if len(ids) == 1 else 'them'}")
    return EXIT_OK


def cmd_backup(ctx: Context, args: argparse.Namespace) -> int:
    """`outputd backup FILE`: a consistent copy of the SQLite store."""
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
    """`outputd check-config`: validate the config and probe every hot folder."""
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
