"""Programs of their own that people run to receive notifications from a notifier service.

A client talks to the service only through its public surfaces (the live
stream, the JSON API under ``/api/v1``, or the message bus itself); the
import contract ``clients`` in ``pyproject.toml`` keeps it that way.
"""
