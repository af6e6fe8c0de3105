"""How the email backend turns a notification into a mail (no server involved)."""

from __future__ import annotations

import dataclasses
import email.policy
import re
from email import message_from_bytes
from email.headerregistry import (
    HeaderRegistry,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from notifier.backends.email import EmailBackend, _as_bytes, build_message
from notifier.backends.mailheaders import STRUCTURED
from notifier.config import EmailConfig, config_from_dict
from notifier.errors import ConfigError, PermanentDeliveryError
from notifier.notification import Notification

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
    message = reparse(build_message(make(content={"subject": "s", "text": "plain body"}),
                                    SETTINGS).as_bytes())
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


# -- the mail as mail readers see it ---------------------------------------------------

LONG_URL = "<https://notifier.example.org/unsubscribe/" + "A" * 60 + "." + "b" * 43 + ">"


def wire(notification: Notification, *, smtp: bool = True, international: bool = False
         ) -> bytes:
    return _as_bytes(build_message(notification, SETTINGS), smtp=smtp,
                     international=international)


def raw_field(data: bytes, name: str) -> bytes:
    """Header ``name`` as it is on the wire, with its folded lines, without the last CRLF."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(name.encode() + b":"))
    end = start + 1
    while end < len(head) and head[end][:1] in (b" ", b"\t"):
        end += 1
    return b"\r\n".join(head[start:end])


@pytest.mark.parametrize("smtp", [True, False], ids=["smtp", "maildir"])
def test_tricky_notifications_parse_back_to_what_was_rendered(smtp: bool) -> None:
    headers = {**HEADERS, "List-Unsubscribe": LONG_URL}
    script = "<p>hi</p><script>alert('x')</script>\n<p>=3D 100% – done</p>"
    cases = [
        ({"subject": "Zoë’s build ✓ finished", "text": "Täxt ✓\n", "html": script},
         "multipart/alternative"),
        ({"subject": "Plain ASCII subject", "text": "only text", "html": ""}, "text/plain"),
    ]
    for content, content_type in cases:
        data = wire(make(content=content, headers=headers), smtp=smtp)
        assert data.isascii()
        assert (b"\r\n" in data) is smtp and (b"\r" in data) is smtp
        message = reparse(data)
        assert message["Subject"] == content["subject"]
        assert message["From"] == "notifier@example.org"
        assert message["To"] == "alice@example.org"
        assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
        assert message["MIME-Version"] == "1.0"
        for name, value in headers.items():
            assert message.get_all(name) == [value], name
        assert raw_field(data if smtp else data.replace(b"\n", b"\r\n"),
                         "List-Unsubscribe") == f"List-Unsubscribe: {LONG_URL}".encode()
        assert message.get_content_type() == content_type
        text = message.get_body(("plain",))
        assert isinstance(text, EmailMessage)
        # Parsed as it is on the wire, CRLF included; an SMTP server stores LF lines.
        newline = "\r\n" if smtp else "\n"
        assert text.get_content() == content["text"].rstrip("\n") + newline
        html = message.get_body(("html",))
        if content["html"]:
            assert isinstance(html, EmailMessage)
            assert html.get_content_charset() == "utf-8"
            assert html.get_content() == script.replace("\n", newline) + newline
        else:
            assert html is None


def test_international_mail_keeps_utf8_headers_raw() -> None:
    data = wire(make(address="zoë@example.org"), international=True)
    assert "Subject: Zoë’s build ✓ finished\r\n".encode() in data
    message = reparse(data)
    assert message["To"] == "zoë@example.org"
    assert message["Subject"] == "Zoë’s build ✓ finished"


# What the email package itself writes for one structured header, at the line length
# this backend gives it (76, so that its encoded words stay within 75 characters).
def stdlib_field(name: str, value: str, international: bool) -> bytes:
    reference = EmailMessage(policy=email.policy.default)
    reference[name] = value
    policy = email.policy.SMTPUTF8 if international else email.policy.SMTP
    return reference.as_bytes(policy=policy.clone(max_line_length=76)).rstrip(b"\r\n")


@pytest.mark.parametrize(("name", "value", "international"), [
    ("To", "bob@example.org", False),
    ("To", "Bob Example <bob@example.org>", False),
    ("To", '"Example, Bob" <bob@example.org>', False),
    ("To", "Zoë Example <zoe@example.org>", False),
    ("To", "zoë@example.org", True),
    ("To", "bob@example.org (comment)", False),
    ("From", "Notifier  <notifier@example.org>", False),
    ("From", "Zöe " + "Exämple " * 12 + "<notifier@example.org>", False),
    ("Date", "Mon, 01 Jan 2024 00:00:00 +0000", False),
    ("Date", "1 Jan 2024 00:00 GMT", False),
    ("Date", "Mon, 14 Nov 2023 22:13:20 +0000", False),  # the wrong weekday
    ("Date", "Tue, 14 Nov 2023 22:13:20 -0000", False),
    ("Message-ID", "<a.b-c@notifier.example.org>", False),
    ("Message-ID", "not an id", False),
])
def test_structured_headers_are_written_as_the_email_package_writes_them(
        name: str, value: str, international: bool) -> None:
    address = "zoë@example.org" if international else "alice@example.org"
    data = wire(make(headers={name: value}, address=address), international=international)
    expected = stdlib_field(name, value, international)
    assert raw_field(data, name) == expected
    assert_readable(raw_field(data, name))
    parsed = reparse(data)
    assert parsed[name] == reparse(expected + b"\r\n\r\n")[name]


@pytest.mark.parametrize(("name", "value", "international"), [
    ("Subject", "Zoë’s build ✓ finished", False),
    ("Subject", "Zoë’s build ✓ finished", True),
    ("Subject", "=?utf-8?q?caf=C3=A9?= looks encoded", False),
    ("Subject", "=?utf-8?q?caf=C3=A9?= looks encoded", True),
    ("Subject", "tab\there", False),
    ("Subject", "zero\u200bwidth", False),
    ("Subject", "ü" + " ümlaut" * 200, False),
    ("Subject", "漢字 " * 100 + "end", False),
    ("Subject", "🚀" * 300, False),
    ("Subject", "", False),
    ("X-Notifier-Rule", "word " * 249 + "word", False),
    ("X-Notifier-Rule", "x" * 1200, False),
    ("X-Notifier-Package", "pýthon-ünïcode", False),
    ("List-Unsubscribe", "<" + "u" * (998 - len("List-Unsubscribe: ") - 2) + ">", False),
])
def test_text_headers_read_back_as_written(name: str, value: str, international: bool
                                           ) -> None:
    address = "zoë@example.org" if international else "alice@example.org"
    data = wire(make(headers={name: value}, address=address), international=international)
    field = raw_field(data, name)
    assert_readable(field)
    assert field.isascii() or international
    assert reparse(data)[name] == value


def assert_readable(field: bytes) -> None:
    """Folded at 78 (but for a word that cannot be broken), encoded words of at most 75."""
    for line in field.split(b"\r\n"):
        assert len(line) <= 998
        words = line.split()
        assert len(line) <= 78 or (len(words) <= 2 and b"=?" not in line), line
    for word in ENCODED_WORD.findall(field):
        assert len(word) <= 75, word


ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def test_structured_header_names_match_the_email_package() -> None:
    registry = HeaderRegistry().registry
    assert STRUCTURED == {name for name, kind in registry.items()
                           if kind not in (UnstructuredHeader, UniqueUnstructuredHeader)}


@pytest.mark.parametrize("text", [
    "windows\r\nline ends\rand old Mac ones\r\n",
    "trailing space \ntrailing tab\t\n.\n..\nFrom here\n",
    "no final newline",
    "",
    "x" * 75 + "\n" + "y" * 76 + "\n" + "z" * 77 + "\n" + "✓" * 500,
    "= =3D =_ --=_boundary\n--=_0123456789abcdef\n\x00\x01 control\n",
])
def test_bodies_come_back_as_the_email_package_gives_them(text: str) -> None:
    data = wire(make(content={"subject": "s", "text": text, "html": f"<pre>{text}</pre>"}),
                smtp=False)
    message = reparse(data)
    reference = EmailMessage(policy=email.policy.default)
    reference.set_content(text, cte="quoted-printable")
    expected = reparse(reference.as_bytes()).get_content()
    plain, html = message.iter_parts()
    assert plain.get_content() == expected
    assert html.get_content() == reparse(_reference_html(text)).get_content()
    assert all(len(line) <= 76 for line in data.split(b"\n\n", 1)[1].split(b"\n"))


def _reference_html(text: str) -> bytes:
    reference = EmailMessage(policy=email.policy.default)
    reference.set_content(f"<pre>{text}</pre>", subtype="html", cte="quoted-printable")
    return reference.as_bytes()


def test_boundary_cannot_occur_in_the_bodies() -> None:
    text = "--=_ =_ ==_\n" * 20
    mail = build_message(make(content={"subject": "s", "text": text, "html": text}), SETTINGS)
    assert mail.boundary.startswith("=_")
    assert b"=_" not in mail.text and b"=_" not in (mail.html or b"")
    again = build_message(make(), SETTINGS)
    assert again.boundary != mail.boundary
    parsed = reparse(mail.as_bytes())
    assert [part.get_content() for part in parsed.iter_parts()] == [text, text]


@pytest.mark.parametrize("breaking", ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85",
                                      "\u2028", "\u2029"])
@pytest.mark.parametrize("where", ["subject", "address", "header"])
def test_no_line_break_reaches_a_header(breaking: str, where: str) -> None:
    evil = f"x{breaking}Bcc: eve@example.org"
    notification = make(
        content={"subject": evil, "text": "t"} if where == "subject" else None,
        headers={"X-Notifier-Rule": evil} if where == "header" else None,
        address=evil if where == "address" else "alice@example.org")
    with pytest.raises(PermanentDeliveryError, match="line break") as info:
        build_message(notification, SETTINGS)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("name", ["X-Rule\r\nBcc", "X-Rule: x", "X Rule", "", "Zoë"])
def test_a_rendered_header_name_must_be_a_field_name(name: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="invalid header name"):
        build_message(make(headers={name: "x"}), SETTINGS)


@pytest.mark.parametrize("name", ["Content-Type", "content-transfer-encoding", "MIME-Version"])
def test_rendered_headers_cannot_change_the_mime_structure(name: str) -> None:
    with pytest.raises(PermanentDeliveryError, match=f"{name!r}.*email backend itself"):
        build_message(make(headers={name: "text/plain"}), SETTINGS)


def test_replaced_header_moves_to_the_end_once_whatever_its_case() -> None:
    mail = build_message(make(headers={"subject": "Rendered", "x-a": "1", "X-A": "2"}),
                         SETTINGS)
    assert [name for name, _ in mail.headers] == \
        ["From", "To", "Date", "subject", "X-A", "Message-ID", "List-Id"]
    assert mail["Subject"] == "Rendered" and mail.get_all("x-a") == ["2"]
    assert mail["Cc"] is None and "Cc" not in mail
