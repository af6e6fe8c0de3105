"""Message metadata: what a bus message is about (placeholder until the sources land)."""

from __future__ import annotations

import json
from typing import Any

from ..config import Config


class Describer:
    """Describes messages: summary, link, app, usernames, packages, severity."""

    def __init__(self, config: Config):
        self.config = config

    def describe(self, message: dict[str, Any]) -> dict[str, Any]:
        topic = str(message.get("topic", ""))
        body = message.get("msg", message.get("body"))
        if isinstance(body, dict) and isinstance(body.get("log"), str):
            summary = body["log"]
        else:
            summary = json.dumps(body, ensure_ascii=False, sort_keys=True)[:200]
        return {"msg_id": message.get("msg_id"), "topic": topic, "summary": summary,
                "link": None}
