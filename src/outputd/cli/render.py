"""What the CLI prints for a person: a job, the rows of the jobs list, the status report."""

from __future__ import annotations

from typing import Any

from outputd.logs import counted, printable
from outputd.pipeline.report import RESULTS, result_of


def render(body: dict[str, Any]) -> str:
    """`outputd show` for a person."""
    lines = [
        f"job {body['job_id']}  order {body['order_id']}  storefront {body['storefront']}"
        + ("  (test mode)" if body["test_mode"] else ""),
        f"  status      {body['status']}" + ("  (cancelled)" if body["cancelled"] else ""),
        f"  product     {body['product_type']} {body['sku']}  quantity {body['quantity']}",
        f"  payment     {body['payment_status']}   approval {body['approval']}",
        f"  customer    {body['customer']['username']} <{body['customer']['email']}>",
        f"  created     {body['created_at']}   updated {body['updated_at']}",
    ]
    if body.get("waiting"):
        lines.append(f"  waiting     {body['waiting']}")
    lines.append("  files")
    lines += [f"    {f['path']}  ({f['role'] or 'no role'})" for f in body.get("files", [])]
    if body["outputs"]:
        lines.append("  outputs")
        lines += [f"    {o['name']}  {counted(o['bytes'], 'byte')}  {counted(o['pages'], 'page')}"
                  f"  sha256 {o['sha256']}"
                  for o in body["outputs"]]
    if body["deliveries"]:
        lines.append("  deliveries")
        for d in body["deliveries"]:
            extra = f"  attempts {d['attempts']}" + (f"  error: {d['error']}" if d["error"] else "")
            lines.append(f"    {d['hotfolder']}  {d['state']}  {d['path']}{extra}")
    if body["preflight"]:
        verdict = "passed" if body["preflight"]["ok"] else "FAILED"
        lines.append(f"  preflight   {verdict}")
        lines += _checks(body["preflight"]["checks"])
    lines.append("  history")
    lines += [f"    {h['at']}  {h['status']:<22} {h['by']:<10} {h['message']}"
              for h in body["history"]]
    return "\n".join(printable(line) for line in lines)


def _checks(checks: list[dict[str, Any]]) -> list[str]:
    """The preflight checks grouped by result: failed, fixed, warned, passed."""
    lines: list[str] = []
    for result in RESULTS:
        found = [c for c in checks if result_of(c) == result]
        if found:
            lines.append(f"    {result} ({len(found)})")
        for c in found:
            pages = c.get("pages") or []
            where = f" [page{'s' if len(pages) > 1 else ''} {_pages(pages)}]" if pages else ""
            lines.append(f"      {c['check']}{where}: {c['message']}")
    return lines


def _pages(pages: list[int]) -> str:
    """1, 3-7, 9: runs of pages shortened; at most 12 runs, then how many more."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    said = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:12]]
    return ", ".join(said) + (f" and {len(runs) - 12} more" if len(runs) > 12 else "")


def render_header() -> str:
    """The column names above the rows of `outputd jobs`."""
    return (f"{'JOB':<16} {'ORDER':<10} {'STOREFRONT':<12} {'TYPE':<9} {'SKU':<14} "
            f"{'STATUS':<22} {'UPDATED':<24} WAITING")


def render_row(body: dict[str, Any]) -> str:
    """One line of `outputd jobs`."""
    return printable(f"{body['job_id']:<16} {body['order_id']:<10} {body['storefront']:<12} "
                     f"{body['product_type']:<9} {body['sku']:<14} {body['status']:<22} "
                     f"{body['updated_at']:<24} {body.get('waiting') or ''}".rstrip())


def render_status(body: dict[str, Any]) -> str:
    """`outputd status` as the text an operator reads."""
    from outputd.ops import status  # loads the config models: only `status` needs them

    lines = ["jobs by status"]
    lines += [f"  {status:<24} {count}" for status, count in sorted(body["counts"].items())]
    lines.append(f"queue depth  {body['queue_depth']}")
    if body.get("late"):
        lines.append(f"late         {body['late']} (outputd jobs --late)")
    lines.append(f"outbox       {body['outbox_depth']} notifications waiting")
    if body["oldest_waiting"]:
        o = body["oldest_waiting"]
        lines.append(f"oldest       {o['job_id']} ({o['status']}, {o['waiting_s']} s)"
                     + (f" waiting {o['why']}" if o.get("why") else ""))
    lines.append("hot folders")
    for name, h in body["hotfolders"].items():
        state = "paused" if h["paused"] else "active"
        line = f"  {name:<12} {h['kind']:<6} {state:<7} last success {h['last_success_at'] or '-'}"
        if h["last_error"]:
            line += f"  last error {h['last_error_at']}: {h['last_error']}"
        if h["paused"]:
            line += (f"  {counted(h['jobs_waiting'], 'job')} waiting for it "
                     f"(outputd resume {name})")
        lines.append(line)
    lines.append("free space")
    lines += [f"  {name:<20} {mb} MB" for name, mb in body["free_mb"].items()]
    if body["low_space"]:
        lines.append(f"LOW SPACE: {body['low_space']}")
    if body["stale_files"]:
        lines.append("files waiting in a hot folder longer than its stale_after_s")
        lines += [f"  {f['hotfolder']:<12} {f['job_id']:<16} {f['waiting_s']:>8.0f} s  "
                  f"{f['path']}" for f in body["stale_files"]]
    if body["intake_waiting"]:
        lines.append(f"tickets in the intake folder for over {status.INTAKE_WAITING_S} s (see the "
                     "log: intake.deferred, intake.failed)")
        lines += [f"  {t['ticket']:<28} {t['waiting_s']:>8.0f} s"
                  for t in body["intake_waiting"]]
    return "\n".join(lines)
