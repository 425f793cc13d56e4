"""``clinic-central budget``: publish or clear the retained backlog drain budget, fleet-wide or
per site (agent.publish.budget holds the payload and its checks; agent.publish.topics the topics).

    clinic-central budget --kbps 64                 every clinic without a budget of its own
    clinic-central budget --kbps 256 --site S1 S2   these sites (overrides the fleet's)
    clinic-central budget --clear [--site S1]       back to the fleet's, or to none at all

Retained, so a clinic that connects later gets it at once; an empty retained message clears it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.publish.budget import Budget
from agent.publish.topics import Topics, fleet_budget_topic
from agent.remote.fleet import BrokerOptions, OperatorLink
from central.config import SITE_PATTERN, CentralConfig


def budget_topics(prefix: str, sites: Sequence[str]) -> list[str]:
    """The topics a budget for ``sites`` goes to; no sites: the fleet-wide one."""
    if not sites:
        return [fleet_budget_topic(prefix)]
    bad = [s for s in sites if not re.fullmatch(SITE_PATTERN, s)]
    if bad:
        raise ValueError(f"not a site id: {', '.join(bad)}")
    return [Topics(prefix, site).budget for site in sorted(set(sites))]


def publish_budget(cfg: CentralConfig, topics: Sequence[str], budget: Budget | None) -> None:
    """Publish ``budget`` (None: clear) retained to each topic, with the ingest's broker login.
    Raises ``agent.remote.fleet.FleetError`` if the broker is unreachable or refuses."""
    m = cfg.mqtt
    opts = BrokerOptions(host=m.host, port=m.port, username=m.username, password=m.password,
                         tls=m.tls, ca_file=m.ca_file, prefix=m.topic_prefix)
    payload = budget.encode() if budget is not None else b""
    with OperatorLink(opts) as link:
        for topic in topics:
            link.publish(topic, payload, retain=True)
