"""Topic names, compiled once from the prefix and site id (see docs/mqtt.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    def _t(self, leaf: str) -> str:
        return f"{self.prefix}/{self.site}/{leaf}"

    @property
    def readings(self) -> str:
        """Live readings (polled since the current connection came up)."""
        return self._t("readings")

    @property
    def backlog(self) -> str:
        """Readings buffered while the link or broker was down, oldest first."""
        return self._t("backlog")

    @property
    def status(self) -> str:
        """Retained online/offline status; the Last Will sets it offline."""
        return self._t("status")

    @property
    def meta(self) -> str:
        """Retained: units of each device's metrics, so readings need not carry them."""
        return self._t("meta")

    @property
    def config_set(self) -> str:
        return self._t("config/set")

    @property
    def config_state(self) -> str:
        return self._t("config/state")

    @property
    def command(self) -> str:
        return self._t("cmd")

    @property
    def command_result(self) -> str:
        return self._t("cmd/result")

    @property
    def diagnostics(self) -> str:
        return self._t("diagnostics")

    @property
    def events(self) -> str:
        """Raise/clear/flapping events, QoS 1, sent ahead of live readings and the backlog."""
        return self._t("events")

    @property
    def events_active(self) -> str:
        """Retained: the problems on now, so a dashboard that connects later sees them."""
        return self._t("events/active")

    @property
    def summary(self) -> str:
        """The daily summary of the site (outages, voltage extremes, drops)."""
        return self._t("summary")

    @property
    def ack(self) -> str:
        """Retained, centre -> agent: highest seq durably stored at the centre, all below it too."""
        return self._t("ack")

    @property
    def budget(self) -> str:
        """Retained, centre -> agent: this site's backlog drain budget (agent.publish.budget)."""
        return self._t("budget")

    @property
    def fleet_budget(self) -> str:
        """Retained, centre -> every agent: the fleet-wide backlog drain budget."""
        return fleet_budget_topic(self.prefix)


# Not a site: the leading '_' keeps it apart from site ids in practice (the operator's sync
# markers live under it too, agent.remote.fleet); the ACL lets every clinic read it.
FLEET_PSEUDO_SITE = "_fleet"


def fleet_budget_topic(prefix: str) -> str:
    """``PREFIX/_fleet/budget``: the budget for every site that has none of its own."""
    return f"{prefix}/{FLEET_PSEUDO_SITE}/budget"


# What the central ingest reads, per site. Readings, backlog, events and summaries are shared
# among the ingest processes; the retained state topics are read by every process, because a
# broker does not send retained messages to a new shared subscription (MQTT 5, 4.8.2).
CENTRAL_SHARED_LEAVES = ("readings", "backlog", "events", "summary")
CENTRAL_STATE_LEAVES = ("status", "meta", "config/state", "events/active")


def split_topic(topic: str, prefix: str) -> tuple[str, str] | None:
    """``PREFIX/SITE/leaf...`` to ``(site, leaf)``; None for a topic outside the prefix."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    site, sep, leaf = topic[len(head):].partition("/")
    if not site or not sep or not leaf:
        return None
    return site, leaf
