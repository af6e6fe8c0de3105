"""Schema classes for dist-git's pushes, shaped like the ones Fedora's schema packages ship.

Fedora's git hook publishes ``git.receive`` with the pushed repository in
``commit.repo`` and its dist-git namespace in ``commit.namespace`` (``rpms``,
``container``, ``modules``, ``flatpaks``); its schema class reports the
repository as a package, container, module or flatpak by that namespace.
Pagure's own ``pagure.git.receive`` does the same from ``repo.namespace``,
where the containers' namespace is spelled ``containers``. These classes
answer the same way, so the messages below are described as they would be
with the real packages installed.
"""

from __future__ import annotations

from typing import Any

from fedora_messaging.message import Message

GIT_HOOK_SCHEMA = "fedora_messaging_git_hook.commit.v1"
PAGURE_SCHEMA = "pagure.git.receive.v1"


class _ByNamespace(Message):
    """The pushed repository, reported under the kind its namespace says."""

    def _repo(self) -> tuple[str | None, str]:
        raise NotImplementedError

    def _if(self, *namespaces: str) -> list[str]:
        namespace, name = self._repo()
        return [name] if namespace in namespaces else []

    @property
    def packages(self) -> list[str]:
        return self._if("rpms")

    @property
    def containers(self) -> list[str]:
        return self._if("container", "containers")

    @property
    def modules(self) -> list[str]:
        return self._if("modules")

    @property
    def flatpaks(self) -> list[str]:
        return self._if("flatpaks")


class GitHookCommit(_ByNamespace):
    """A push to dist-git, as its git hook publishes it."""

    topic = "git.receive"
    body_schema = {"type": "object", "required": ["agent", "commit"],
                   "properties": {"agent": {"type": "string"}, "commit": {"type": "object"}}}

    def _repo(self) -> tuple[str | None, str]:
        commit = self.body["commit"]
        return commit.get("namespace"), commit["repo"]

    @property
    def app_name(self) -> str:
        return "Git"

    @property
    def agent_name(self) -> str:
        return self.body["agent"]

    @property
    def usernames(self) -> list[str]:
        return [self.body["agent"]]

    @property
    def url(self) -> str | None:
        return self.body["commit"].get("url")

    @property
    def summary(self) -> str:
        commit = self.body["commit"]
        where = f"{commit['namespace']}/{commit['repo']}" if commit.get("namespace") \
            else commit["repo"]
        return f'{self.body["agent"]} pushed to {where} ({commit["branch"]}). ' \
               f'"{commit["summary"]}"'


class PagureGitReceive(_ByNamespace):
    """A push, as pagure publishes it."""

    topic = "pagure.git.receive"

    def _repo(self) -> tuple[str | None, str]:
        repo = self.body["repo"]
        return repo.get("namespace"), repo["name"]

    @property
    def app_name(self) -> str:
        return "pagure"

    @property
    def agent_name(self) -> str:
        return self.body["agent"]

    @property
    def summary(self) -> str:
        return (f"{self.body['agent']} pushed {self.body['total_commits']} commits on "
                f"{self.body['repo']['fullname']} (branch: {self.body['branch']})")


SCHEMAS = {GIT_HOOK_SCHEMA: GitHookCommit, PAGURE_SCHEMA: PagureGitReceive}

_NAMESPACE_DIRS = {"rpms": "rpms", "container": "container", "modules": "modules",
                   "flatpaks": "flatpaks"}


def git_hook_push(namespace: str, repo: str, agent: str = "hedda",
                  msg_id: str = "2026-00000000-0000-4000-8000-000000000001") -> dict[str, Any]:
    """A ``fedora-messaging record`` line of a dist-git push to ``namespace/repo``."""
    rev = "3aa6642b0990d1f6a0e0ce7373c8ad37d2f980ce"
    return {
        "topic": "org.fedoraproject.prod.git.receive",
        "id": msg_id,
        "headers": {"fedora_messaging_schema": GIT_HOOK_SCHEMA,
                    "fedora_messaging_severity": 20,
                    "sent-at": "2026-11-30T10:42:31+00:00"},
        "body": {"agent": agent, "commit": {
            "name": "Hedda Gabler", "email": "hedda@example.org", "username": agent,
            "summary": "Rebase on the new base image", "message": "Rebase on the new base image\n",
            "stats": {"files": {"Dockerfile": {"additions": 1, "deletions": 1, "lines": 2}},
                      "total": {"additions": 1, "deletions": 1, "lines": 2, "files": 1}},
            "rev": rev,
            "path": f"/srv/git/repositories/{_NAMESPACE_DIRS[namespace]}/{repo}.git/",
            "repo": repo, "namespace": namespace, "branch": "rawhide",
            "patch": "", "date": "2026-11-30T10:42:31+01:00",
            "url": f"https://src.fedoraproject.org/{namespace}/{repo}/c/{rev}?branch=rawhide",
        }},
    }


def pagure_push(namespace: str, name: str, agent: str = "wanda") -> dict[str, Any]:
    """A ``fedora-messaging record`` line of pagure's own message for a push."""
    return {
        "topic": "org.fedoraproject.prod.pagure.git.receive",
        "id": "2026-00000000-0000-4000-8000-000000000002",
        "headers": {"fedora_messaging_schema": PAGURE_SCHEMA},
        "body": {
            "agent": agent, "forced": False, "branch": "refs/heads/rawhide",
            "authors": [{"fullname": "Wanda Maximoff", "name": agent,
                         "url_path": f"user/{agent}", "email": f"{agent}@example.org"}],
            "total_commits": 2, "old_commit": "a" * 40, "start_commit": "b" * 40,
            "end_commit": "c" * 40,
            "repo": {"name": name, "namespace": namespace, "fullname": f"{namespace}/{name}",
                     "full_url": f"https://src.fedoraproject.org/{namespace}/{name}",
                     "url_path": f"{namespace}/{name}", "parent": None,
                     "user": {"name": agent, "fullname": "Wanda Maximoff"}},
        },
    }
