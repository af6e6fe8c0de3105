"""notifier's database: users, package owners, rules and message history.

``Store(url)`` (or ``Store.from_config(config)``) opens SQLite or PostgreSQL
through SQLAlchemy and migrates the schema with the Alembic migrations that
ship in this package. See :class:`~notifier.storage.store.Store`.
"""

from __future__ import annotations

from .store import OwnershipDelta, Store, StoredMessage, UserImport

__all__ = ["OwnershipDelta", "Store", "StoredMessage", "UserImport"]
