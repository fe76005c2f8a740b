"""The subscriber's engine.io client: events and acks dispatched in its read
loop, in order, without a task each; every other packet keeps its task."""

from __future__ import annotations

import asyncio
import logging

import engineio.packet
import pytest

from harness.clients.subscriber import _EngineIOClient


def _message(data: str) -> engineio.packet.Packet:
    return engineio.packet.Packet(engineio.packet.MESSAGE, data=data)


async def test_events_and_acks_are_handled_before_the_next_read_in_order() -> None:
    client = _EngineIOClient()
    seen: list[str] = []

    async def on_message(data: str) -> None:
        seen.append(data)

    client.on("message", on_message)
    for data in ('2["new_alert",{"id":1}]', '31[{"ok":true}]', '2["workflow_updated",{}]'):
        await client._receive_packet(_message(data))
        # No task in between: the handler ran before the read loop reads on.
        assert seen[-1] == data
    assert seen == ['2["new_alert",{"id":1}]', '31[{"ok":true}]', '2["workflow_updated",{}]']


async def test_a_failing_handler_is_logged_and_the_next_packet_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = _EngineIOClient()
    seen: list[str] = []

    async def on_message(data: str) -> None:
        if "boom" in data:
            raise ValueError("boom")
        seen.append(data)

    client.on("message", on_message)
    with caplog.at_level(logging.ERROR, logger="harness.clients.subscriber"):
        await client._receive_packet(_message('2["boom"]'))
        await client._receive_packet(_message('2["after"]'))
    assert seen == ['2["after"]']
    assert "message handler failed" in caplog.text


async def test_a_connect_packet_keeps_its_task_so_its_handler_may_wait_on_later_packets() -> None:
    # A (re)connect handler waits for acks that arrive later on the same read
    # loop: handled inline, it would wait on itself forever.
    client = _EngineIOClient()
    acked = asyncio.Event()
    connected = asyncio.Event()

    async def on_message(data: str) -> None:
        if data.startswith("0"):
            await acked.wait()
            connected.set()
        elif data.startswith("3"):
            acked.set()

    client.on("message", on_message)
    async with asyncio.timeout(5):
        await client._receive_packet(_message('0{"sid":"abc"}'))
        assert not connected.is_set()
        await client._receive_packet(_message('31[{"ok":true}]'))
        await connected.wait()


def test_engineio_still_hands_every_received_packet_to_the_overridden_method() -> None:
    # The override is only reached while engine.io's read loops call
    # ``_receive_packet``: a release that renames it would silently bring the
    # task per event back.
    import inspect

    import engineio

    for loop in (
        engineio.AsyncClient._read_loop_websocket,
        engineio.AsyncClient._read_loop_polling,
    ):
        assert "self._receive_packet(" in inspect.getsource(loop)
