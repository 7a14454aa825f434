"""Errors raised by outputd. Each message is the sentence an operator reads.

OutputdError
 ├── ConfigError             the config file or an override is invalid
 ├── TicketError             a ticket is refused at intake (moved to rejected/)
 │    └── TicketConflict     its job id exists with another ticket
 ├── IntakeDeferred          a ticket cannot be taken in yet (a full disk): it waits
 ├── RequestRefused          a CLI request or event the job does not allow (exit 1)
 │    ├── BadRequest         a request that cannot mean anything
 │    ├── UnknownJob, UnknownOrder, UnknownHotFolder
 │    └── TransitionRefused  the state machine forbids the change
 ├── StageError              a pipeline stage failed for this job
 │    └── OutputFailed       the print-ready output could not be made
 └── DeliveryError           a hot folder did not take a file
      ├── PermanentDeliveryError   retrying blindly will not help (permission, auth)
      ├── NameTaken                another file holds the final name: never replaced
      └── CopyAborted              outputd is stopping: not a failure, resume next start
"""

from __future__ import annotations


class OutputdError(Exception):
    """Base of every error outputd raises on purpose."""


class ConfigError(OutputdError):
    """The configuration is invalid; start-up stops."""


class TicketError(OutputdError):
    """A ticket cannot be accepted."""


class TicketConflict(TicketError):
    """A job of the ticket's id exists with another ticket."""


class IntakeDeferred(OutputdError):
    """A ticket cannot be taken in yet for a reason outside it (a full or unwritable
    folder): it stays in the intake folder and is tried again."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class RequestRefused(OutputdError):
    """A request the store or the state machine refuses."""


class UnknownJob(RequestRefused):
    """No job has this id (or the caller may not see it)."""
    def __init__(self, job_id: str) -> None:
        super().__init__(f"there is no job {job_id}")
        self.job_id = job_id


class BadRequest(RequestRefused):
    """A request that cannot mean anything (a malformed cursor, filter or body)."""


class UnknownOrder(RequestRefused):
    """No job of this order (that the caller may see)."""


class UnknownHotFolder(RequestRefused):
    """No hot folder of this name in the config."""


class TransitionRefused(RequestRefused):
    """A status change the transition table does not allow."""


class StageError(OutputdError):
    """A pipeline stage failed; the message is the reason kept with the job."""


class OutputFailed(StageError):
    """The print-ready output could not be made (or would be delivered wrongly)."""


class DeliveryError(OutputdError):
    """A delivery failed and may succeed when retried."""


class PermanentDeliveryError(DeliveryError):
    """A delivery failed in a way a retry will not fix without an operator."""


class NameTaken(DeliveryError):
    """The final name in a hot folder holds a file outputd did not put there for this
    delivery (another job's, or anyone's): it is never replaced, and the delivery is
    tried again later (the RIP may take that file away)."""

    def __init__(self, hotfolder: str, path: str, job_id: str | None = None) -> None:
        whose = f"job {job_id}: " if job_id is not None else ""
        super().__init__(
            f"{whose}hot folder {hotfolder}: {path} already holds another file; outputd "
            "never replaces a file it did not put there for this job")
        self.hotfolder = hotfolder
        self.path = path

    def for_job(self, job_id: str) -> NameTaken:
        """The same error, naming the job whose file was not delivered."""
        return NameTaken(self.hotfolder, self.path, job_id)


class CopyAborted(DeliveryError):
    """A copy cut short by a stop; the delivery stays pending."""
