"""Users: local records, package ownership files, and FASJSON profiles.

:class:`UserDirectory` answers "who is this user and where do they get
notifications", from the local store first and FASJSON second.
"""

from __future__ import annotations

from .directory import UserDirectory
from .fasjson import DirectoryError, FasjsonSource

__all__ = ["DirectoryError", "FasjsonSource", "UserDirectory"]
