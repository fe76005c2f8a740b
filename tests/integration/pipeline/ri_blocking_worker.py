"""A queue worker that blocks forever inside the completion transaction.

Run as a subprocess by the "worker killed mid-job" test: it prints ``locked``
once it holds the tracker lock, then waits to be killed (SIGKILL).
Usage: python ri_blocking_worker.py PG_DSN REDIS_URL
"""

from __future__ import annotations

import asyncio
import sys

from reference_impl import AppConfig
from reference_impl.completion import Stage
from reference_impl.runtime import Runtime


class BlockAfterLock:
    async def after(self, stage: Stage, project_id: int) -> None:
        if stage == "locked":
            sys.stdout.write("locked\n")
            sys.stdout.flush()
            await asyncio.Event().wait()


async def main(pg_dsn: str, redis_url: str) -> None:
    config = AppConfig(pg_dsn=pg_dsn, redis_url=redis_url, queue_heartbeat_s=1, run_worker=True)
    runtime = await Runtime.start(config, hooks=BlockAfterLock())
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
