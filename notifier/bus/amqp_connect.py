"""Connecting to an AMQP broker: pika's parameters, and addresses shown without passwords."""

from __future__ import annotations

import os
import ssl

import pika
import pika.exceptions

from ..config import AmqpConfig
from ..errors import TransportError

#: what a lost or refused connection raises in pika
CONNECTION_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                     pika.exceptions.StreamLostError, ConnectionError, OSError)


def parameters(address: str, settings: AmqpConfig, timeout: float,
               role: str = "publisher") -> pika.URLParameters:
    """pika's connection parameters for ``address``, with TLS for ``amqps://``.

    The connection is named ``notifier <role> pid <pid>`` on the broker
    (``rabbitmqctl list_connections client_properties``).
    """
    try:
        params = pika.URLParameters(address)
    except Exception as exc:  # pika raises several kinds for a bad URL
        raise TransportError(f"{address!r} is not an AMQP URL: {exc}") from exc
    params.heartbeat = settings.heartbeat
    params.socket_timeout = timeout
    params.blocked_connection_timeout = max(timeout, 1.0) * 6
    params.connection_attempts = 1
    params.client_properties = {"connection_name": f"notifier {role} pid {os.getpid()}"}
    if address.startswith("amqps://"):
        context = ssl.create_default_context(cafile=settings.ca_cert)
        if settings.certificate:
            context.load_cert_chain(settings.certificate, settings.private_key)
        params.ssl_options = pika.SSLOptions(context, params.host)
    return params


def shown(address: str) -> str:
    """``address`` without its password, for messages."""
    scheme, sep, rest = address.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return address
    return f"{scheme}{sep}{userinfo.partition(':')[0]}@{host}"
