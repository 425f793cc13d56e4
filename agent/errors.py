"""The agent's exception hierarchy.

Library errors (pysnmp, pymodbus, paho, sqlite3) are translated into these at the adapter that
calls the library, with ``raise ... from exc`` so the cause is kept for debugging.
"""

from collections.abc import Sequence

from agent.i18n import Text


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """A configuration (file or push) failed validation.

    ``problems`` holds every problem found, each in English as "key.path: what is wrong", so a
    technician can fix the whole file in one go; ``details`` the same problems as
    ``agent.config.fields.Problem`` (a message id with arguments), for showing them in the
    reader's language. Plain strings are accepted (and shown as they are).
    """

    def __init__(self, problems: "Sequence[object]", *, source: str = "config") -> None:
        self.details = list(problems)
        self.problems = [str(p) for p in self.details]
        self.source = source
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


class SourceError(AgentError):
    """A device poll failed. ``status`` is the short status published; ``code`` the why as a
    catalogue id with its arguments (``agent.catalogue.sources``), rendered in the reader's
    language where it is shown; ``reason`` its English rendering (the log, ``poll.reason``).

    A plain string is accepted (tests, old code) and has no code: it is shown as it is.
    """

    status = "error"

    def __init__(self, reason: Text | str) -> None:
        self.code: Text | None = reason if isinstance(reason, Text) else None
        self.reason = str(reason)
        super().__init__(self.reason)


class DeviceTimeout(SourceError):
    """The device did not answer in time (unreachable, wrong address, service disabled)."""

    status = "timeout"


class DeviceRefused(SourceError):
    """The device actively refused: connection refused, authentication failed, access denied."""

    status = "refused"


class DeviceProtocolError(SourceError):
    """The device answered, but with something we cannot use (wrong type, garbage, exception
    code)."""

    status = "bad_answer"


class StoreError(AgentError):
    """The durable buffer could not do what was asked (disk full, I/O error)."""


class StoreBusy(StoreError):
    """Another process (a running agent) holds the buffer file exclusively."""


class StoreCorrupt(StoreError):
    """The buffer file is not a usable SQLite database."""


class PublishError(AgentError):
    """The broker could not be reached or refused us."""
