"""A stored rule that no longer validates is left out alone: serve starts and the rest match."""

from __future__ import annotations

import pytest

from notifier.storage import Store
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_serve_starts_without_the_invalid_rule_and_delivers_the_others(
        world_for, caplog: pytest.LogCaptureFixture) -> None:
    world = world_for()
    with Store.from_config(world.config) as store:  # past validation, as an old version might
        store.upsert_rules([{"user": "carol", "name": "paged", "destinations": ["pager"],
                             "track": {"kind": "topics", "patterns": ["*"]}}])
    world.start()
    world.publish("fix the build")
    wait_for(lambda: world.subjects("alice@example.org"), "alice's mail")
    assert world.subjects("carol@example.org") == []
    left_out = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("a stored rule is left out")]
    assert len(left_out) == 1
    assert "user 'carol'" in left_out[0] and "'paged'" in left_out[0]
    assert "unknown destination 'pager'" in left_out[0]
