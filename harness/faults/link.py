"""Links: one direction of a proxied connection, through a chain of toxic stages.

    source socket -> Stage(toxic 1) -> Stage(toxic 2) -> ... -> dest socket

With no toxic the link writes straight from ``data_received`` to the other
socket (the fast path). Each toxic runs as its own task on its own inbox, so a
slow toxic does not stall the ones before it, as in Toxiproxy's channel chain.
Adding, updating or removing a toxic on a live link interrupts only that stage
and never drops or reorders bytes already inside the chain.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Any, Protocol

from harness.faults.toxics import TOXIC_TYPES, Chunk, Toxic

__all__ = ["Link", "LinkOwner", "Stage"]

logger = logging.getLogger(__name__)

HIGH_WATER_BYTES = 1 << 20
"""Pause reading the source when this many bytes wait inside the toxic chain."""
LOW_WATER_BYTES = 1 << 18

_NOOP = TOXIC_TYPES["noop"]


class LinkOwner(Protocol):
    """The connection a link belongs to."""

    def reset(self) -> None:
        """Abort both sockets with a TCP RST."""
        ...

    def link_closed(self, link: Link) -> None:
        """The link delivered EOF: close its destination socket."""
        ...


class Stage:
    """A toxic running on one link; implements ``toxics.StageContext``."""

    def __init__(self, link: Link, toxic: Toxic) -> None:
        self.link = link
        self.toxic = toxic
        self.inbox: deque[Chunk | None] = deque()
        self.queued_bytes = 0
        self.held: Chunk | None = None
        self.state: dict[str, Any] = {}
        self.closed = False
        self.rng = random.Random()
        self._runs = 0
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- StageContext -------------------------------------------------------
    async def recv(self) -> Chunk | None:
        while not self.inbox:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self.inbox.popleft()
        if item is not None:
            self.queued_bytes -= len(item.data)
            self.link.drained()
        self.held = item
        return item

    def send(self, chunk: Chunk) -> None:
        self.held = None
        if not self.closed:
            self.link.forward(self, chunk)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.held = None
        self.inbox.clear()
        self.queued_bytes = 0
        self.link.drained()
        self.link.forward(self, None)

    def reset(self) -> None:
        self.link.owner.reset()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    # -- pipeline -----------------------------------------------------------
    def push(self, item: Chunk | None) -> None:
        if self.closed:
            return
        self.inbox.append(item)
        if item is not None:
            self.queued_bytes += len(item.data)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def start(self) -> None:
        """Run the toxic, rolling its toxicity (seeded per connection, toxic and run)."""
        self._runs += 1
        self.rng = random.Random(f"{self.link.rng_key}|{self.toxic.name}|{self._runs}")
        active = self.rng.random() < self.toxic.toxicity
        kind = self.toxic.kind if active else _NOOP
        self._task = asyncio.get_running_loop().create_task(self._run(kind.pipe))

    async def _run(self, pipe: Any) -> None:
        try:
            await pipe(self.toxic.attributes, self)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("toxic %s failed; closing its stream", self.toxic.name)
            self.close()

    async def interrupt(self) -> None:
        """Stop the toxic; whatever it held moves on to the next stage."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self.held is not None and not self.closed:
            held, self.held = self.held, None
            self.link.forward(self, held)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Link:
    """One direction of a connection: source bytes -> toxic stages -> ``dest``."""

    def __init__(
        self,
        owner: LinkOwner,
        direction: str,
        source: asyncio.Transport,
        dest: asyncio.Transport,
        rng_key: str,
    ) -> None:
        self.owner = owner
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng_key = f"{rng_key}|{direction}"
        self.stages: list[Stage] = []
        self.output_closed = False
        self.input_closed = False
        self._pause_reasons: set[str] = set()

    # -- input from the source socket ----------------------------------------
    def feed(self, data: bytes) -> None:
        if self.input_closed:
            return
        if not self.stages:
            self._deliver(data)
            return
        self.stages[0].push(Chunk(data, asyncio.get_running_loop().time()))
        if self._queued() > HIGH_WATER_BYTES:
            self.pause("chain")

    def feed_eof(self) -> None:
        if self.input_closed:
            return
        self.input_closed = True
        if self.stages:
            self.stages[0].push(None)
        else:
            self._finish()

    # -- output to the dest socket -------------------------------------------
    def forward(self, stage: Stage, item: Chunk | None) -> None:
        index = self.stages.index(stage) + 1
        if index < len(self.stages):
            self.stages[index].push(item)
        elif item is None:
            self._finish()
        else:
            self._deliver(item.data)

    def _deliver(self, data: bytes) -> None:
        if not self.output_closed and not self.dest.is_closing():
            self.dest.write(data)

    def _finish(self) -> None:
        if not self.output_closed:
            self.output_closed = True
            self.owner.link_closed(self)

    # -- flow control ----------------------------------------------------------
    def _queued(self) -> int:
        return sum(stage.queued_bytes for stage in self.stages)

    def drained(self) -> None:
        if "chain" in self._pause_reasons and self._queued() < LOW_WATER_BYTES:
            self.resume("chain")

    def pause(self, reason: str) -> None:
        if not self._pause_reasons and not self.source.is_closing():
            self.source.pause_reading()
        self._pause_reasons.add(reason)

    def resume(self, reason: str) -> None:
        self._pause_reasons.discard(reason)
        if not self._pause_reasons and not self.source.is_closing():
            self.source.resume_reading()

    # -- toxic changes ---------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        stage = Stage(self, toxic)
        if self.output_closed:
            stage.closed = True
        self.stages.append(stage)
        if not stage.closed:
            stage.start()

    async def update_toxic(self, toxic: Toxic) -> None:
        for stage in self.stages:
            if stage.toxic.name == toxic.name:
                await stage.interrupt()
                stage.toxic = toxic
                if not stage.closed:
                    stage.start()

    async def remove_toxic(self, name: str) -> None:
        for stage in list(self.stages):
            if stage.toxic.name != name:
                continue
            await stage.interrupt()
            if stage.toxic.kind.cleanup_closes and not self.output_closed:
                stage.close()
            if not stage.closed:
                pending = list(stage.inbox)
                stage.inbox.clear()
                stage.queued_bytes = 0
                for item in pending:
                    self.forward(stage, item)
            if stage in self.stages:
                self.stages.remove(stage)
            self.drained()

    def shutdown(self) -> None:
        """The connection is gone: stop every toxic task."""
        for stage in self.stages:
            stage.cancel()
