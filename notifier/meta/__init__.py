"""Message metadata: what a bus message is about, and whom it concerns.

>>> from notifier.meta import Describer
>>> Describer(config).describe(envelope)["summary"]

:class:`Describer` merges several sources (config mappings, fedora-messaging
schemas, fedmsg.meta processors, a generic fallback); :func:`normalize`
turns the accepted message forms into a fedmsg envelope.
"""

from __future__ import annotations

from .base import FIELDS, SEVERITIES
from .describer import Describer
from .normalize import derived_msg_id, normalize

__all__ = ["FIELDS", "SEVERITIES", "Describer", "derived_msg_id", "normalize"]
