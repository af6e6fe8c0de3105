"""Realistic messages, in the shapes Fedora's applications publish them."""

from __future__ import annotations

from typing import Any

BODHI_COMMENT: dict[str, Any] = {
    "username": "amqp-bridge",
    "source_name": "datanommer",
    "source_version": "0.9.0",
    "i": 412,
    "timestamp": 1717600000.0,
    "msg_id": "2024-0c0ffee0-1111-4222-8333-444455556666",
    "topic": "org.fedoraproject.prod.bodhi.update.comment",
    "headers": {},
    "msg": {
        "agent": "marta",
        "comment": {
            "author": "marta",
            "karma": 1,
            "karma_critpath": 0,
            "text": "Works here, thanks.",
            "timestamp": "2024-06-05 15:06:40",
            "update": {
                "alias": "FEDORA-2024-1a2b3c4d5e",
                "title": "rust-ripgrep-14.1.0-1.fc40",
                "url": "https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e",
                "status": "testing",
                "karma": 1,
                "user": {"name": "jonas"},
                "builds": [{"nvr": "rust-ripgrep-14.1.0-1.fc40", "type": "rpm"}],
            },
        },
    },
}

KOJI_BUILD_FAILED: dict[str, Any] = {
    "i": 7,
    "timestamp": 1717600100,
    "msg_id": "2024-7e7e7e7e-aaaa-4bbb-8ccc-dddddddddddd",
    "topic": "org.fedoraproject.prod.buildsys.build.state.change",
    "username": "apache",
    "msg": {
        "build_id": 2456789,
        "task_id": 118000001,
        "attribute": "state",
        "instance": "primary",
        "name": "python-click",
        "version": "8.1.7",
        "release": "3.fc41",
        "owner": "ignatius",
        "old": 0,
        "new": 3,
    },
}

DISTGIT_PUSH: dict[str, Any] = {
    "i": 1,
    "timestamp": 1717600200,
    "msg_id": "2024-5a5a5a5a-0000-4111-8222-333333333333",
    "topic": "org.fedoraproject.prod.git.receive",
    "msg": {
        "commit": {
            "username": "hedda",
            "name": "Hedda Gabler",
            "email": "hedda@example.org",
            "repo": "python-click",
            "namespace": "rpms",
            "branch": "rawhide",
            "rev": "0123456789abcdef0123456789abcdef01234567",
            "summary": "Update to 8.1.7",
            "message": "Update to 8.1.7\n\nFixes the shell completion bug.",
            "seen": False,
            "stats": {"files": {"python-click.spec": {"insertions": 3, "deletions": 2,
                                                       "lines": 5}},
                      "total": {"insertions": 3, "deletions": 2, "lines": 5, "files": 1}},
        }
    },
}

PAGURE_PUSH: dict[str, Any] = {
    "i": 2,
    "timestamp": 1717600300,
    "msg_id": "2024-9b9b9b9b-1234-4567-89ab-cdefcdefcdef",
    "topic": "io.pagure.prod.pagure.git.receive",
    "username": "git",
    "msg": {
        "agent": "wanda",
        "forced": False,
        "branch": "refs/heads/main",
        "total_commits": 2,
        "start_commit": "1111111111111111111111111111111111111111",
        "end_commit": "2222222222222222222222222222222222222222",
        "repo": {"name": "fedora-notes", "parent": None, "namespace": None,
                 "user": {"name": "wanda", "fullname": "Wanda Maximoff"}},
    },
}

# Taskotron's processor fetches the update from Bodhi to know its packages.
TASKOTRON_UPDATE_RESULT: dict[str, Any] = {
    "i": 3,
    "timestamp": 1717600400,
    "msg_id": "2024-3c3c3c3c-9999-4888-8777-666666666666",
    "topic": "org.fedoraproject.prod.taskotron.result.new",
    "msg": {
        "task": {"item": "FEDORA-2024-1a2b3c4d5e", "type": "bodhi_update",
                 "name": "dist.rpmdeplint"},
        "result": {"outcome": "PASSED", "id": 909,
                   "log_url": "https://taskotron.example.org/artifacts/909.log"},
    },
}

LOG_LINE: dict[str, Any] = {
    "i": 1,
    "timestamp": 1717600500,
    "msg_id": "2024-10101010-2020-4030-8040-505050505050",
    "topic": "org.fedoraproject.dev.logger.log",
    "username": "olga",
    "msg": {"log": "Rebooting proxy01 for the kernel update"},
}

# As `fedora-messaging record` writes a message: no schema installed for it here.
RECORDED_COPR: dict[str, Any] = {
    "topic": "org.fedoraproject.prod.copr.build.end",
    "headers": {
        "fedora_messaging_schema": "copr.build.end",
        "fedora_messaging_schema_package": "copr_messaging",
        "fedora_messaging_severity": 20,
        "fedora_messaging_user_frida": True,
        "fedora_messaging_rpm_python-click": True,
        "priority": 0,
        "sent-at": "2024-06-05T15:20:00+00:00",
    },
    "id": "6f0e8c5e-6a4b-4b8e-9f57-0c9d1c0de001",
    "body": {"build": 7654321, "chroot": "fedora-40-x86_64", "owner": "frida",
             "copr": "click-nightly", "pkg": "python-click", "status": 1,
             "user": "frida", "version": "8.1.7-1", "what": "build end"},
    "queue": "amq.gen-abc",
    "priority": 0,
}

BARE: dict[str, Any] = {"topic": "org.example.prod.ci.pipeline.complete",
                        "msg": {"pipeline": 42, "result": "success"}}

REALISTIC = [BODHI_COMMENT, KOJI_BUILD_FAILED, DISTGIT_PUSH, PAGURE_PUSH, LOG_LINE,
             RECORDED_COPR, BARE]
