"""How the email backend turns a notification into a mail (no server involved)."""

from __future__ import annotations

import dataclasses
import email.policy
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from notifier.backends.base import Notification
from notifier.backends.email import EmailBackend, _as_bytes, build_message
from notifier.config import EmailConfig, config_from_dict
from notifier.errors import ConfigError, PermanentDeliveryError

SETTINGS = EmailConfig(from_address="notifier@example.org", list_id="notifications.example.org")
HEADERS = {
    "Message-ID": "<2025-abc.alice@notifier.example.org>",
    "In-Reply-To": "<koji.build.42@notifier.example.org>",
    "References": "<koji.build.42@notifier.example.org>",
    "List-Id": "<notifications.notifier.example.org>",
    "List-Unsubscribe": "<https://notifier.example.org/unsubscribe/tok>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "X-Notifier-Rule": "my builds",
    "X-Notifier-Topic": "org.fedoraproject.prod.buildsys.build.state.change",
    "X-Notifier-App": "koji",
}


def make(content: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         address: str = "alice@example.org", timestamp: float = 1_700_000_000.0
         ) -> Notification:
    return Notification(
        user="alice", destination="email", address=address, msg_id="2025-abc",
        topic="org.fedoraproject.prod.buildsys.build.state.change", app="koji",
        content=content if content is not None else {
            "subject": "Zoë’s build ✓ finished",
            "text": "The build finished.\nSee https://koji.example.org/42\n",
            "html": "<p>The build <b>finished</b> ✓</p>"},
        headers=HEADERS if headers is None else headers, timestamp=timestamp)


def reparse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_multipart_alternative_text_then_html_in_utf8() -> None:
    message = reparse(build_message(make(), SETTINGS).as_bytes())
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert parts[0].get_content() == "The build finished.\nSee https://koji.example.org/42\n"
    assert "<b>finished</b> ✓" in parts[1].get_content()


def test_envelope_headers_and_rendered_headers() -> None:
    message = reparse(build_message(make(), SETTINGS).as_bytes())
    assert message["From"] == "notifier@example.org"
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == "Zoë’s build ✓ finished"
    assert parsedate_to_datetime(message["Date"]).timestamp() == 1_700_000_000
    for name, value in HEADERS.items():
        assert message.get_all(name) == [value], name


def test_non_ascii_headers_are_encoded_words_on_the_wire() -> None:
    data = _as_bytes(build_message(make(), SETTINGS), smtp=True, international=False)
    assert data.isascii()
    assert b"\r\n" in data
    assert b"Subject: =?utf-8?" in data


def test_maildir_bytes_use_plain_newlines() -> None:
    data = _as_bytes(build_message(make(), SETTINGS), smtp=False, international=False)
    assert b"\r\n" not in data
    assert reparse(data)["Subject"] == "Zoë’s build ✓ finished"


def test_international_address_is_sent_as_raw_utf8() -> None:
    message = build_message(make(address="zoë@example.org"), SETTINGS)
    data = _as_bytes(message, smtp=True, international=True)
    assert "To: zoë@example.org".encode() in data


def test_message_id_and_list_id_fall_back_when_not_rendered() -> None:
    first = build_message(make(headers={}), SETTINGS)
    again = build_message(make(headers={}), SETTINGS)
    other = build_message(dataclasses.replace(make(headers={}), msg_id="2025-def"), SETTINGS)
    assert first["Message-ID"] == again["Message-ID"]
    assert str(first["Message-ID"]).endswith("@example.org>")
    assert first["Message-ID"] != other["Message-ID"]
    assert first["List-Id"] == "<notifications.example.org>"


def test_rendered_headers_replace_the_backend_ones() -> None:
    message = build_message(make(headers={"Date": "Mon, 01 Jan 2024 00:00:00 +0000"}),
                            SETTINGS)
    assert message.get_all("Date") == ["Mon, 01 Jan 2024 00:00:00 +0000"]


def test_text_only_when_no_html_was_rendered() -> None:
    message = build_message(make(content={"subject": "s", "text": "plain body"}), SETTINGS)
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "plain body\n"


@pytest.mark.parametrize("missing", ["subject", "text"])
def test_missing_content_is_permanent(missing: str) -> None:
    content = {"subject": "s", "text": "t", "html": "<p>h</p>"}
    del content[missing]
    with pytest.raises(PermanentDeliveryError, match=f"alice@example.org.*'{missing}'"):
        build_message(make(content=content), SETTINGS)


def test_header_with_a_line_break_is_permanent() -> None:
    with pytest.raises(PermanentDeliveryError, match="alice@example.org") as info:
        build_message(make(headers={"X-Notifier-Rule": "a\r\nBcc: eve@example.org"}),
                      SETTINGS)
    assert isinstance(info.value.__cause__, ValueError)


def test_ssl_and_starttls_together_are_refused_at_setup() -> None:
    config = config_from_dict({"email": {"smtp_host": "mail.example.org", "ssl": True,
                                         "starttls": True}}, "/etc/notifier/notifier.toml")
    with pytest.raises(ConfigError, match=r"/etc/notifier/notifier.toml.*'ssl'.*'starttls'"):
        EmailBackend(config).setup()


def test_where_names_the_server_or_the_maildir(tmp_path: Path) -> None:
    smtp = EmailBackend(config_from_dict({"email": {"smtp_host": "mail.example.org",
                                                    "smtp_port": 587}}))
    local = EmailBackend(config_from_dict({"email": {"maildir": str(tmp_path / "M")}}))
    assert smtp.where == "SMTP server mail.example.org:587"
    assert local.where == f"Maildir {tmp_path / 'M'}"


def test_long_unsubscribe_url_stays_a_plain_url_on_the_wire() -> None:
    url = "<http://127.0.0.1:8080/unsubscribe/" + "A" * 60 + "." + "b" * 43 + ">"
    data = _as_bytes(build_message(make(headers={"List-Unsubscribe": url}), SETTINGS),
                     smtp=True, international=False)
    raw = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"List-Unsubscribe: {url}\r\n" in raw  # one line, no encoded words
    assert reparse(data)["List-Unsubscribe"] == url
