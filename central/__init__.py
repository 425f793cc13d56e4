"""clinic-central: the central side of the clinic agents' MQTT contract (see docs/central.md)."""

from agent import __version__

__all__ = ["__version__"]
