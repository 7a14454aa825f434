"""Plain-text mails to the operators, one per job and status, or one summary for a burst."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from outputd.config import EmailConfig
from outputd.errors import DeliveryError
from outputd.store.outbox import Notification


def _password(config: EmailConfig) -> str | None:
    if config.password is not None:
        return config.password.get_secret_value()
    if config.password_file is not None:
        return config.password_file.read_text().rstrip("\n")
    return None


def header(value: str) -> str:
    """A header value with every control character (a line break in a file name, say)
    made a space: one cannot end the header or the mail."""
    return "".join(ch if ch.isprintable() else " " for ch in value)


def compose_one(config: EmailConfig, n: Notification) -> EmailMessage:
    """The mail for one notification."""
    body = json.loads(n.body)
    mail = EmailMessage()
    mail["Subject"] = header(f"outputd: job {n.job_id} is {n.status}")
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    mail.set_content(
        f"Job:        {n.job_id}\nOrder:      {body['order_id']}\n"
        f"Storefront: {body['storefront']}\nStatus:     {n.status}\n"
        f"Reason:     {n.message}\nAt:         {body['at']}\n\n"
        f"See more:   outputd show {n.job_id}\n"
    )
    return mail


def compose_summary(config: EmailConfig, status: str, reason: str,
                    notes: Sequence[Notification]) -> EmailMessage:
    """One mail summing up several notifications of a status."""
    mail = EmailMessage()
    mail["Subject"] = header(f"outputd: {len(notes)} jobs are {status} ({reason})")
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    lines = [f"{len(notes)} jobs became {status} within a short time, for one reason:",
             f"  {reason}", "", "Jobs:"]
    for n in notes:
        order = json.loads(n.body)["order_id"]
        lines.append(f"  {n.job_id}  (order {order})  {n.message}")
    lines += ["", f"See them all:  outputd jobs --status {status}"]
    mail.set_content("\n".join(lines) + "\n")
    return mail


def send(config: EmailConfig, mail: EmailMessage) -> None:
    """Send one mail; raise DeliveryError with the reason."""
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port,
                          timeout=config.timeout_s) as smtp:
            if config.starttls:
                smtp.starttls()
            password = _password(config)
            if config.username and password is not None:
                smtp.login(config.username, password)
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"SMTP {config.smtp_host}:{config.smtp_port}: {exc.__class__.__name__}: {exc}"
        ) from None


def probe(config: EmailConfig) -> str:
    """Connect (and log in) to the SMTP server; say what answered."""
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s) as smtp:
            code, _ = smtp.noop()
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {config.smtp_host}:{config.smtp_port}: {exc}") from None
    return f"accepts connections (NOOP {code})"
