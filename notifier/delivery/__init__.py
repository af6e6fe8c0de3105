"""Delivery: the durable outbox, digests, and the workers that drive the backends.

Notification states in the outbox:

* ``pending``: waiting for its first attempt;
* ``failed``: an attempt failed; retried at ``next_attempt`` (exponential
  backoff with jitter) until ``[delivery] max_attempts``;
* ``sent``: delivered;
* ``dead``: given up on (a permanent failure, or out of attempts);
* ``held``: collected for the user's digest on that destination;
* ``digested``: went out inside a digest (the digest is its own row).

A notification is unique per ``(user, msg_id, destination)``, so a message
matched by two rules of one user is sent once.
"""
