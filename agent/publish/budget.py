"""The backlog drain budget the centre publishes, fleet-wide and per site (docs/fleet.md).

    clinic-central budget --retained--> PREFIX/_fleet/budget, PREFIX/SITE/budget  {"v":1,"kbps":N}
        -> Forwarder (subscribes on each connection) -> DrainBudget -> the backlog lane's bucket

An agent drains its backlog within the smaller of its own ``buffer.backlog_kbps`` and the
centre's budget: the site's if one is published, else the fleet's. Live readings and events are
never paced by it. With no budget published, the agent's own limit alone applies (as before).

The payload comes from the network: it is parsed within ``MAX_PAYLOAD`` bytes, and anything but
a small JSON object with a sane ``kbps`` is ignored (the budget in force stays), with a code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.errors import AgentError
from agent.i18n import Text, text

BUDGET_VERSION = 1
MAX_PAYLOAD = 256            # {"v":1,"kbps":1000000} is 22 bytes
# A budget can slow a backlog but never stop it: a mistaken 0 must not strand three days of
# readings at every clinic. The top is the agent's own backlog_kbps maximum.
MIN_KBPS = 1.0
MAX_KBPS = 1_000_000.0


class BudgetRejected(AgentError):
    """A message on a budget topic that is not a budget; ``code`` says why (a catalogue id)."""

    def __init__(self, code: Text) -> None:
        self.code = code
        super().__init__(str(code))


@dataclass(frozen=True)
class Budget:
    kbps: float

    def __post_init__(self) -> None:
        if not (MIN_KBPS <= self.kbps <= MAX_KBPS):
            raise ValueError(f"kbps must be from {MIN_KBPS:.0f} to {MAX_KBPS:.0f}")

    def encode(self) -> bytes:
        """The wire form (what ``clinic-central budget`` publishes)."""
        kbps: float | int = int(self.kbps) if self.kbps == int(self.kbps) else self.kbps
        return json.dumps({"v": BUDGET_VERSION, "kbps": kbps}, separators=(",", ":")).encode()


def decode_budget(payload: bytes, topic: str) -> Budget | None:
    """A budget, or None for an empty payload (the retained budget was cleared).
    Raises ``BudgetRejected`` for anything else."""
    if not payload:
        return None
    if len(payload) > MAX_PAYLOAD:
        raise BudgetRejected(text("budget.too_large", topic=topic, max=MAX_PAYLOAD))
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
        raise BudgetRejected(text("budget.not_json", topic=topic)) from exc
    if not isinstance(doc, dict):
        raise BudgetRejected(text("budget.not_json", topic=topic))
    version = doc.get("v", BUDGET_VERSION)
    if type(version) is not int or version != BUDGET_VERSION:
        raise BudgetRejected(text("budget.bad_version", topic=topic, v=str(version)[:20]))
    kbps = doc.get("kbps")
    # The range check also refuses NaN and infinities, and compares a huge int exactly
    # (math.isfinite would overflow on it).
    if (isinstance(kbps, bool) or not isinstance(kbps, (int, float))
            or not MIN_KBPS <= kbps <= MAX_KBPS):
        raise BudgetRejected(text("budget.bad_kbps", topic=topic, min=f"{MIN_KBPS:.0f}",
                                  max=f"{MAX_KBPS:.0f}"))
    return Budget(float(kbps))


def effective_kbps(own_kbps: float, site: Budget | None, fleet: Budget | None) -> float:
    """The backlog limit in force, kbit/s; 0 means unlimited (``buffer.backlog_kbps = 0`` and
    no budget). The site's budget overrides the fleet's; the agent's own limit always holds."""
    central = site if site is not None else fleet
    if central is None:
        return own_kbps
    if own_kbps <= 0:
        return central.kbps
    return min(own_kbps, central.kbps)


@dataclass
class DrainBudget:
    """The budgets last received (None: none published, or cleared)."""

    site: Budget | None = None
    fleet: Budget | None = None
    rejected: int = 0

    def receive(self, payload: bytes, topic: str, *, site_topic: bool) -> Text | None:
        """Apply a message from a budget topic; the rejection's code if it was not a budget
        (the budget in force is then kept)."""
        try:
            budget = decode_budget(payload, topic)
        except BudgetRejected as exc:
            self.rejected += 1
            return exc.code
        if site_topic:
            self.site = budget
        else:
            self.fleet = budget
        return None

    def kbps(self, own_kbps: float) -> float:
        return effective_kbps(own_kbps, self.site, self.fleet)
