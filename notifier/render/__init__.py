"""The render stage: turns a described bus message into a notification for one destination.

It sits between the rules (who wants a message) and delivery (the outbox,
digests and backends), which only send what was rendered here::

    renderer = Renderer(config, secret=installation_secret)
    notification = renderer.render("email", described, envelope, user, ["my-packages"],
                                   "alice@example.org")

Templates are described in :mod:`notifier.render.templates`, what each
destination receives in :mod:`notifier.render.renderer`, and the email
headers in :mod:`notifier.render.headers`.
"""

from .renderer import Renderer
from .tokens import unsubscribe_token, verify_unsubscribe_token

__all__ = ["Renderer", "unsubscribe_token", "verify_unsubscribe_token"]
