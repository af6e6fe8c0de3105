"""``notifier firehose``: a bot that posts the message bus to IRC channels and Matrix rooms.

It subscribes to ``[bus] endpoints`` itself, describes every message as the
service does (:mod:`notifier.meta`), keeps the ones each channel's filters
pass (:mod:`.filters`, in the rules' vocabulary) and posts one line per
message, ``[app] summary link`` (:mod:`.lines`). Each network has one
connection and one line rate; a channel whose queue would wait longer than
its ``max_delay`` folds what waits into one line per app (:mod:`.queue`).
The connection (:mod:`.network`) reconnects, rejoins and regains its nick;
people talk to the bot with a few commands (:mod:`.commands`). Matrix rooms
are a second kind of target (:mod:`.matrix`), with the same filters, queues
and commands. :mod:`.bot`
wires it together, and runs alone or as a part of ``notifier serve``.
"""

from .bot import Firehose

__all__ = ["Firehose"]
