"""The plain pages that need no sign-in: what this service is (``/``), the unsubscribe
confirmation, and the sign-in link's button."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, PlainTextResponse, Response

_STYLE = ("body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;"
          "line-height:1.5}code{background:#8883;padding:0 .2em}")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'>"
            f"<meta name='color-scheme' content='light dark'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def not_found() -> Response:
    """The one 404: unknown paths, unknown users and wrong tokens all get it."""
    return PlainTextResponse("not found\n", status_code=404)


def home() -> Response:
    """``GET /``: what this service is, and how a person manages their notifications."""
    return HTMLResponse(_page("Notifications", """
<h1>Notifications</h1>
<p>This service sends you notifications about events on the message bus (builds,
updates, comments and the like) that your rules select: by email, at once or as a
digest, by IRC private message, in a personal Atom or RSS feed, or as desktop
notifications.</p>
<h2>Your notification settings</h2>
<ul>
<li><b>Turn off what a mail sent you:</b> every mail ends with a link that turns
off the rule that sent it, in one click.</li>
<li><b>Rules, addresses and digests</b> are kept by the administrators of this
service; write to them to follow something new, or to change where and how often
notifications reach you.</li>
<li><b>Your feed</b> and your <b>live stream</b> have private addresses, with a
token in them; the administrators give them to you. Keep them to yourself.</li>
</ul>
<p>A web page to manage all of this yourself will take this place.</p>
"""))


def unsubscribe_form(user: str, rule: str) -> Response:
    """``GET /unsubscribe/<token>``: a button that sends the one-click POST."""
    return HTMLResponse(_page("Unsubscribe", (
        "<h1>Unsubscribe</h1><form method='post'>"
        f"<p>Stop the notifications of rule <b>{html.escape(rule)}</b> "
        f"for {html.escape(user)}?</p>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Disable the rule</button></form>")))


def unsubscribed(user: str, rule: str) -> Response:
    """The answer to the one-click POST."""
    return PlainTextResponse(f"Rule {rule!r} of {user} is now disabled.\n")


def page(title: str, body: str, status_code: int = 200) -> Response:
    """A plain page of this service: ``body`` is HTML, already escaped."""
    return HTMLResponse(_page(title, body), status_code=status_code)


def sign_in_link_form(user: str) -> Response:
    """``GET /signin/link/<secret>``: a button; mail scanners opening links sign no one in."""
    return page("Sign in", (
        "<h1>Sign in</h1><form method='post'>"
        f"<p>Sign in to notifier as <b>{html.escape(user)}</b>?</p>"
        "<button type='submit'>Sign in</button></form>"))


def sign_in_link_dead() -> Response:
    """A sign-in link that is unknown, used or expired."""
    return page("Sign in", "<p>This sign-in link has been used or has expired. Ask for a "
                "new one; each link works once, within 15 minutes.</p>", 404)
