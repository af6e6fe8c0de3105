"""[http] listen: host and port, as written."""

from __future__ import annotations

import pytest

from notifier.config import config_from_dict
from notifier.errors import ConfigError
from notifier.web.binding import bind_listener, split_listen


@pytest.mark.parametrize("listen, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("[::1]:8080", ("::1", 8080)),
    ("localhost:0", ("localhost", 0)),
    (" 0.0.0.0:80 ", ("0.0.0.0", 80)),
])
def test_split_listen(listen: str, expected: tuple[str, int]) -> None:
    assert split_listen(listen) == expected


@pytest.mark.parametrize("listen", ["localhost", "8080", "host:port", ":80", "a:70000",
                                    "::1:80", "[::1]"])
def test_split_listen_refuses(listen: str) -> None:
    with pytest.raises(ValueError):
        split_listen(listen)


def test_bind_listener_names_the_key_the_file_and_the_value() -> None:
    config = config_from_dict({"http": {"listen": "localhost"}}, "/etc/notifier/x.toml")
    with pytest.raises(ConfigError) as raised:
        bind_listener(config)
    assert str(raised.value) == ("/etc/notifier/x.toml: [http] listen = 'localhost': no port "
                                 "(write host:port, for example 127.0.0.1:8080)")


def test_bind_listener_listens_with_the_backlog() -> None:
    config = config_from_dict({"http": {"listen": "127.0.0.1:0", "backlog": 64}})
    sock = bind_listener(config)
    try:
        assert sock.getsockname()[1] != 0
        with pytest.raises(ConfigError, match="in use"):
            bind_listener(config_from_dict(
                {"http": {"listen": f"127.0.0.1:{sock.getsockname()[1]}"}}))
    finally:
        sock.close()
