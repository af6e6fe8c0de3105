"""Delivery backends (installed as ``notifier.backends``).

Each backend turns an already rendered :class:`~notifier.backends.base.Notification`
into a delivery. They are found by name in :data:`~notifier.backends.registry.BACKENDS`,
or, for third parties, through the ``notifier.backends`` entry-point group.
"""
