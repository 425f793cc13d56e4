"""Operating-system errors in the reader's language.

``exc.strerror`` is the C library's English ("No such file or directory"); a technician reads
Spanish. ``os_error(exc)`` names the error by its errno as a catalogue ``Text`` (shown in the
reader's language, English in the journal); an errno not listed keeps the system's words.
"""

from __future__ import annotations

import errno

from agent.catalogue.oserrors import MESSAGES
from agent.i18n import Text

_KNOWN = {getattr(errno, key[3:]): key for key in MESSAGES if key[3:].isupper()}


def os_error(exc: BaseException) -> Text:
    """The error as a catalogue text: by errno when listed, else the system's own words."""
    code = getattr(exc, "errno", None)
    key = _KNOWN.get(code) if isinstance(code, int) else None
    if key is not None:
        return Text(key)
    words = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return Text("os.other", {"error": words})
