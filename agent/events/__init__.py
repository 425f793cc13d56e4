"""Power and internet events decided at the edge: "on battery since 14:03", "mains back after
47 min".

    readings ─> EventEngine.observe / tick (engine.py, conditions.py; pure, time injected)
            ─> events + engine snapshot, in the buffer's transaction (store.py)
            ─> forwarder: PREFIX/SITE/events ahead of readings, events/active retained,
               summary once a day (wire.py, summary.py)
    clinic-agent events / status (render.py): from the buffer file, read-only

The writer owns the engine; nothing else changes it. docs/events.md lists every condition and
threshold for the central team.
"""

from agent.events.engine import EventEngine, RestartEvidence, describe
from agent.events.model import Active, Event

__all__ = ["Active", "Event", "EventEngine", "RestartEvidence", "describe"]
