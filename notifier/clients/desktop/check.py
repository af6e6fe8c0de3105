"""Trying a stream token before writing it into the config file."""

from __future__ import annotations

import httpx


def check_stream(url: str, user: str, token: str) -> str | None:
    """None when ``token`` opens ``user``'s stream at ``url``, else what is wrong."""
    try:
        with httpx.Client(timeout=10) as client, client.stream(
                "GET", f"{url}/users/{user}/stream",
                headers={"Authorization": f"Bearer {token}"}) as response:
            status = response.status_code
    except httpx.HTTPError as exc:
        return f"{url} cannot be reached: {exc}"
    if status == 404:
        return f"{url} knows no user {user!r} with that token (404)"
    if status != 200:
        return f"{url} answered {status} for the stream of {user!r}"
    return None
