"""Several versions of a schema class claiming one topic: the body chooses."""

from __future__ import annotations

import pytest

from notifier.config import config_from_dict
from notifier.meta import Describer
from notifier.meta.schemas import SchemaSource

pytest.importorskip("fedora_messaging")

from fedora_messaging.message import Message

TOPIC = "deploy.update.status.testing.build.complete"


def _schema(required: list[str]) -> dict:
    return {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
            "properties": {key: {"type": "string"} for key in required}, "required": required}


class V1(Message):
    topic = TOPIC
    body_schema = _schema(["update"])

    @property
    def summary(self) -> str:
        return f"v1: {self.body['update']}"


class V2(Message):
    topic = TOPIC
    body_schema = _schema(["artifact", "update_id"])

    @property
    def summary(self) -> str:
        return f"v2: {self.body['update_id']} of {self.body['artifact']}"


class V3(Message):
    topic = TOPIC
    body_schema = _schema(["artifact", "update_id", "agent"])

    @property
    def summary(self) -> str:
        return f"v3: {self.body['agent']} pushed {self.body['update_id']}"

    @property
    def agent_name(self) -> str:
        return self.body["agent"]


# Registration order puts v1 first, as entry points would list it.
SCHEMAS = {"base.message": Message, "deploy.v1": V1, "deploy.v2": V2, "deploy.v3": V3}
FULL = f"org.example.prod.{TOPIC}"
BODY_V1 = {"update": "FEDORA-1"}
BODY_V2 = {"artifact": "kernel", "update_id": "FEDORA-2"}
BODY_V3 = {"artifact": "kernel", "update_id": "FEDORA-3", "agent": "ada"}


@pytest.fixture(scope="module")
def source() -> SchemaSource:
    return SchemaSource(SCHEMAS)


def test_without_a_header_the_class_whose_body_schema_validates_wins(source) -> None:
    assert source.schema_for(FULL, None, BODY_V1) is V1
    assert source.schema_for(FULL, None, BODY_V2) is V2
    # A v3 body validates v2's schema too (extra keys are allowed): the most specific wins.
    assert source.schema_for(FULL, None, BODY_V3) is V3
    assert source.schema_for(FULL, {}, {"nothing": "known"}) is V1  # none validates: the first


def test_equally_specific_classes_keep_the_order_they_are_registered_in() -> None:
    class V2b(V2):
        topic = TOPIC

    source = SchemaSource({"deploy.v2b": V2b, "deploy.v2": V2})
    assert source.schema_for(FULL, None, BODY_V2) is V2b


def test_the_schema_header_still_wins(source) -> None:
    headers = {"fedora_messaging_schema": "deploy.v3"}
    assert source.schema_for(FULL, headers, BODY_V1) is V3


def test_the_describer_summarises_with_the_right_version() -> None:
    describer = Describer(config_from_dict({"meta": {"use_fedmsg_meta": False}}),
                          schemas=SCHEMAS)
    for body, summary in ((BODY_V1, "v1: FEDORA-1"), (BODY_V2, "v2: FEDORA-2 of kernel"),
                          (BODY_V3, "v3: ada pushed FEDORA-3")):
        described = describer.describe({"topic": FULL, "body": body, "id": "x-1"})
        assert described["summary"] == summary
    assert describer.describe({"topic": FULL, "body": BODY_V3, "id": "x-2"})["agent"] == "ada"


def test_the_class_chosen_names_the_schema_header() -> None:
    describer = Describer(config_from_dict({"meta": {"use_fedmsg_meta": False}}),
                          schemas=SCHEMAS)
    described = describer.describe_for_headers({"topic": FULL, "msg": BODY_V2, "msg_id": "a"})
    assert described["schema"] == "deploy.v2"
    assert described["summary"] == "v2: FEDORA-2 of kernel"
    unknown = describer.describe_for_headers({"topic": "org.x.other", "msg": {}, "msg_id": "b"})
    assert unknown["schema"] is None
