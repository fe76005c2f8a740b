"""The conductor names a shard that failed, with its error (a real shard process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contract import SeedResult, TokenScheme
from harness.contract.seed import LineItem
from harness.scale import ProcessLink, ShardError, ShardPlan
from harness.scale.conductor import _gather
from harness.scenario import RunParams
from harness.stack._net import free_port

pytestmark = pytest.mark.timeout(120)


async def test_a_shard_that_cannot_reach_the_app_is_named_with_its_error(tmp_path: Path) -> None:
    items = [LineItem(i, 1, 1, f"step {i}", "project_manager", 1, True) for i in (1, 2, 3)]
    plan = ShardPlan(
        index=0,
        shards=1,
        app_urls=[f"http://127.0.0.1:{free_port()}"],  # nothing listens there
        direct_dsn="postgresql://nobody@127.0.0.1:1/none",
        target="reference",
        tokens=TokenScheme(secret="s" * 32),
        seeded=SeedResult(
            project_ids=[1, 2],
            members={1: {"project_manager": 11}, 2: {"project_manager": 12}},
            tracker_ids={1: 1, 2: 2},
            line_items=items,
        ),
        params=RunParams(projects=2, rate_per_s=5.0, duration_s=1.0),
        history_path=str(tmp_path / "shard-0.jsonl"),
    )
    link = ProcessLink(tmp_path)
    try:
        await link.start([plan])
        with pytest.raises(
            ShardError, match=r"(?s)shard 0 exited \(1\) .* for 'ready'.*Cannot connect"
        ):
            await _gather(link, "ready", 1, 60.0)
    finally:
        await link.stop()
