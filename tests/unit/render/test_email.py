"""Email headers: no injection, stable Message-ID, threading, list and unsubscribe headers."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from notifier.errors import ConfigError
from notifier.notification import Notification
from notifier.render import Renderer, verify_unsubscribe_token

from .conftest import SECRET, USER, render, site_config

BASE_HEADERS = {"From", "To", "Subject", "Message-ID", "List-Id", "Auto-Submitted",
                "X-Notifier-Topic", "X-Notifier-App", "MIME-Version", "Content-Type"}


def parsed_mail(n: Notification) -> EmailMessage:
    """The mail as an email backend would build it, sent through bytes and parsed back."""
    msg = EmailMessage()
    msg["From"] = "notifier@example.org"
    msg["To"] = n.address
    msg["Subject"] = n.content["subject"]
    for name, value in n.headers.items():
        msg[name] = value
    msg.set_content(n.content["text"])
    msg.add_alternative(n.content["html"], subtype="html")
    return email.message_from_bytes(bytes(msg), policy=policy.default)


INJECTIONS = [
    "hi\r\nBcc: victim@example.org",
    "hi\nBcc: victim@example.org",
    "hi\rBcc: victim@example.org",
    "hi\r\n\r\n<html>body</html>",
    "hi\u2028Bcc: victim@example.org",
    "hi\x85Bcc: victim@example.org",
    "hi\x0bBcc: victim@example.org\x0c",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_line_breaks_in_content_cannot_add_headers(renderer: Renderer, evil: str) -> None:
    n = render(renderer, "email", summary=evil, app=evil, topic=evil, packages=[evil],
               rules=(evil, "rule-2"))
    for value in [n.content["subject"], *n.headers.values()]:
        assert not any(c in value for c in "\r\n\x0b\x0c\x85\u2028\u2029"), value
    mail = parsed_mail(n)
    assert set(mail.keys()) == BASE_HEADERS | {
        "In-Reply-To", "References", "X-Notifier-Package", "List-Unsubscribe",
        "List-Unsubscribe-Post", "X-Notifier-Rule"}
    assert "Bcc" not in mail and mail.get_all("To") == ["bob@example.org"]
    assert "Bcc: victim@example.org" in mail["Subject"] or "<html>body</html>" in mail["Subject"]
    assert mail["X-Notifier-Topic"].startswith("hi ")
    assert mail["X-Notifier-Rule"].endswith(", rule-2")
    # The unsubscribe link still names the (odd) first rule exactly.
    url = mail["List-Unsubscribe"].strip("<>")
    assert verify_unsubscribe_token(SECRET, url.rsplit("/", 1)[1]) == ("bob", evil)


def test_headers_of_a_realistic_mail(renderer: Renderer) -> None:
    n = render(renderer, "email", rules=("my-packages", "mentions"))
    mail = parsed_mail(n)
    assert mail["List-Id"] == "<notifications.example.org>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].startswith("<https://notify.example.org/unsubscribe/")
    assert mail["X-Notifier-Rule"] == "my-packages, mentions"
    assert mail["X-Notifier-Topic"] == "org.fedoraproject.prod.bodhi.update.comment"
    assert mail["X-Notifier-App"] == "bodhi"
    assert mail["X-Notifier-Package"] == "python-requests"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].endswith("@notifications.example.org>")
    # set_content ends each part with a newline.
    assert mail.get_body(("plain",)).get_content() == n.content["text"] + "\n"
    assert mail.get_body(("html",)).get_content() == n.content["html"] + "\n"


def test_message_id_is_stable_per_user_and_message(renderer: Renderer) -> None:
    first = render(renderer, "email").headers["Message-ID"]
    assert render(renderer, "email", summary="other text").headers["Message-ID"] == first
    assert render(renderer, "email", msg_id="2024-other").headers["Message-ID"] != first
    alice = {**USER, "name": "alice"}
    assert render(renderer, "email", user=alice).headers["Message-ID"] != first
    other = Renderer(site_config(), secret=b"another secret")
    assert render(other, "email").headers["Message-ID"] == first


def test_mails_about_the_same_app_and_package_thread_together(renderer: Renderer) -> None:
    def thread(**changes: object) -> tuple[str, str]:
        headers = render(renderer, "email", **changes).headers
        assert headers["In-Reply-To"] == headers["References"]
        return headers["In-Reply-To"], headers["Message-ID"]

    root, mid = thread(msg_id="m1")
    root2, mid2 = thread(msg_id="m2", summary="another comment", app="Bodhi")
    assert root == root2 and mid != mid2
    assert root not in (mid, mid2)
    assert thread(msg_id="m3", packages=["python-urllib3"])[0] != root
    assert thread(msg_id="m4", app="koji")[0] != root
    # First package decides: a message about two packages joins the first one's thread.
    assert thread(msg_id="m5", packages=["python-requests", "python-urllib3"])[0] == root
    alice = {**USER, "name": "alice"}
    assert thread(msg_id="m1", user=alice)[0] != root


def test_a_container_threads_and_is_named_as_a_package_is(renderer: Renderer) -> None:
    def headers(msg_id: str, **kinds: object) -> dict[str, str]:
        return render(renderer, "email", msg_id=msg_id, packages=[], **kinds).headers

    first = headers("c1", containers=["fedora-toolbox"])
    assert first["X-Notifier-Package"] == "containers/fedora-toolbox"
    assert headers("c2", containers=["fedora-toolbox"])["In-Reply-To"] == first["In-Reply-To"]
    other = headers("f1", flatpaks=["fedora-toolbox"])
    assert other["X-Notifier-Package"] == "flatpaks/fedora-toolbox"
    assert other["In-Reply-To"] != first["In-Reply-To"]
    # the package first, when there is one
    assert render(renderer, "email", packages=["kernel"], modules=["kernel"]).headers[
        "X-Notifier-Package"] == "kernel"


def test_message_without_package_starts_no_thread(renderer: Renderer) -> None:
    headers = render(renderer, "email", packages=[]).headers
    assert "In-Reply-To" not in headers and "References" not in headers
    assert "X-Notifier-Package" not in headers


def test_no_rule_means_no_unsubscribe_header(renderer: Renderer) -> None:
    n = render(renderer, "email", rules=())
    assert not {"List-Unsubscribe", "List-Unsubscribe-Post", "X-Notifier-Rule"} & set(n.headers)
    assert "/unsubscribe/" not in n.content["text"]


def test_base_url_defaults_to_listen_address() -> None:
    renderer = Renderer(site_config(http={"listen": "0.0.0.0:9000"}), secret=SECRET)
    headers = render(renderer, "email").headers
    assert headers["List-Unsubscribe"].startswith("<http://0.0.0.0:9000/unsubscribe/")


def test_list_id_with_description() -> None:
    config = site_config(email={"list_id": "Example notifications <notify.example.org>"})
    headers = render(Renderer(config, secret=SECRET), "email").headers
    assert headers["List-Id"] == "Example notifications <notify.example.org>"
    assert headers["Message-ID"].endswith("@notify.example.org>")


def test_bad_list_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="email.list_id"):
        Renderer(site_config(email={"list_id": "two words"}), secret=SECRET)


def test_long_subject_is_cut(renderer: Renderer) -> None:
    subject = render(renderer, "email", summary="word " * 200).content["subject"]
    assert len(subject) == 255 and subject.endswith("…")
