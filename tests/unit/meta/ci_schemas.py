"""fedora-messaging schema classes of an imaginary CI service, as a package would ship them."""

from __future__ import annotations

from fedora_messaging.message import WARNING, Message


class BuildFinished(Message):
    """A build finished; a failed one is a warning."""

    topic = "ci.build.finished"

    @property
    def summary(self) -> str:
        return f"{self.body['owner']} built {self.body['nvr']}: {self.body['result']}"

    @property
    def app_name(self) -> str:
        return "ci"

    @property
    def app_icon(self) -> str:
        return "https://ci.example/icon.png"

    @property
    def url(self) -> str:
        return f"https://ci.example/builds/{self.body['id']}"

    @property
    def agent_name(self) -> str:
        return self.body["owner"]

    @property
    def usernames(self) -> list[str]:
        return [self.body["owner"], *self.body.get("watchers", [])]

    @property
    def packages(self) -> list[str]:
        return [self.body["nvr"].rsplit("-", 2)[0]]

    @property
    def groups(self) -> list[str]:
        return ["ci-admins"]


class BuildBroken(Message):
    """A class whose summary fails on every message."""

    topic = "ci.build.broken"

    @property
    def summary(self) -> str:
        raise KeyError("owner")


class BuildQueued(Message):
    """Knows the application and severity but has no summary of its own."""

    topic = "ci.build.queued"
    severity = WARNING

    @property
    def app_name(self) -> str:
        return "ci"

    @property
    def usernames(self) -> list[str]:
        raise TypeError("no users in a queued build")


SCHEMAS = {"base.message": Message, "ci.build.finished.v1": BuildFinished,
           "ci.build.broken.v1": BuildBroken, "ci.build.queued.v1": BuildQueued}
