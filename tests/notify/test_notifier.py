"""Dedupe per error key and window, the background worker, its queue and its shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
import structlog

from session_service.notify.notifier import AlertNotifier
from tests.conftest import T0, FakeClock
from tests.notify.conftest import (
    WINDOW,
    Outcomes,
    SmtpSink,
    WebhookReceiver,
    settle,
    smtp_channel,
    webhook_channel,
)
from tests.notify.test_smtp import create_alert

MakeNotifier = Callable[..., AlertNotifier]


def occurrences_line(sink: SmtpSink, index: int) -> str:
    lines: list[str] = sink.messages()[index].get_content().splitlines()
    [line] = [line for line in lines if line.startswith("Occurrences:")]
    return line


def sent_json(receiver: WebhookReceiver) -> list[dict[str, object]]:
    return [json.loads(request.body) for request in receiver.requests]


class TestDedupe:
    async def test_a_burst_of_one_error_sends_one_message_per_channel(
        self,
        smtp_server: SmtpSink,
        webhook_server: WebhookReceiver,
        make_notifier: MakeNotifier,
        clock: FakeClock,
    ) -> None:
        notifier = make_notifier(smtp_channel(smtp_server), webhook_channel(webhook_server))
        queued = []
        for _ in range(100):
            queued.append(notifier.notify(create_alert()))
            clock.advance(timedelta(seconds=1))  # 100 s: all inside the 5-minute window
        await settle(notifier)

        assert queued == [True] + [False] * 99
        assert len(smtp_server.envelopes) == 1
        assert len(webhook_server.requests) == 1

    async def test_after_the_window_the_next_message_reports_the_suppressed_count(
        self,
        smtp_server: SmtpSink,
        webhook_server: WebhookReceiver,
        make_notifier: MakeNotifier,
        clock: FakeClock,
    ) -> None:
        notifier = make_notifier(smtp_channel(smtp_server), webhook_channel(webhook_server))
        for _ in range(100):
            notifier.notify(create_alert())
        clock.advance(WINDOW - timedelta(seconds=1))
        assert not notifier.notify(create_alert())  # 101st, still inside the window
        clock.advance(timedelta(seconds=1))
        assert notifier.notify(create_alert())  # 102nd: the window has ended
        await settle(notifier)

        assert [body["occurrences"] for body in sent_json(webhook_server)] == [1, 101]
        assert sent_json(webhook_server)[1]["since"] == T0.isoformat()
        assert occurrences_line(smtp_server, 0) == "Occurrences: 1"
        assert occurrences_line(smtp_server, 1) == (
            "Occurrences: 101 since the previous alert at 2026-01-15T09:30:00+00:00"
        )

        clock.advance(WINDOW)
        assert notifier.notify(create_alert())  # nothing suppressed since the last one
        await settle(notifier)
        assert sent_json(webhook_server)[2]["occurrences"] == 1

    async def test_distinct_errors_each_get_their_own_message(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server))
        for _ in range(5):
            for key in ("db-down", "s3-down", "bug-in-export"):
                notifier.notify(create_alert(key=key))
        await settle(notifier)

        bodies = sent_json(webhook_server)
        assert [body["key"] for body in bodies] == ["db-down", "s3-down", "bug-in-export"]
        assert {body["occurrences"] for body in bodies} == {1}

    async def test_the_remembered_keys_are_bounded(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server), max_keys=2)
        assert notifier.notify(create_alert(key="a"))
        assert notifier.notify(create_alert(key="b"))
        assert not notifier.notify(create_alert(key="b"))
        assert notifier.notify(create_alert(key="c"))  # over the cap: "a", the oldest, goes
        assert not notifier.notify(create_alert(key="c"))
        assert notifier.notify(create_alert(key="a"))  # forgotten, so a message again
        await settle(notifier)

        assert [body["key"] for body in sent_json(webhook_server)] == ["a", "b", "c", "a"]


class TestNotify:
    async def test_without_channels_nothing_happens(self, clock: FakeClock) -> None:
        async with AlertNotifier([], window=WINDOW, clock=clock) as notifier:
            assert not notifier.enabled
            assert not notifier.notify(create_alert())
            await notifier.drain()

    async def test_the_recent_actions_of_the_session_are_fetched_and_cut_to_200(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        asked: list[str] = []

        async def recent_actions(session_id: str) -> str:
            asked.append(session_id)
            return "upload " * 100

        notifier = make_notifier(webhook_channel(webhook_server), recent_actions=recent_actions)
        notifier.notify(create_alert(key="with-session", session_id="sess-9"))
        notifier.notify(create_alert(key="no-session", session_id=None))
        await settle(notifier)

        assert asked == ["sess-9"]  # never asked without a session
        with_session, without = sent_json(webhook_server)
        assert with_session["recent_actions"] == ("upload " * 100)[:199] + "…"
        assert without["recent_actions"] == ""

    async def test_failing_recent_actions_still_send_the_alert(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        async def recent_actions(session_id: str) -> str:
            raise ConnectionResetError("database gone")

        notifier = make_notifier(webhook_channel(webhook_server), recent_actions=recent_actions)
        with structlog.testing.capture_logs() as logs:
            notifier.notify(create_alert())
            await settle(notifier)

        assert outcomes == [("webhook", True)]
        assert sent_json(webhook_server)[0]["recent_actions"] == ""
        [failed] = [entry for entry in logs if entry["event"] == "alert_recent_actions_failed"]
        assert failed["error"] == "ConnectionResetError"
        assert "database gone" not in str(logs)  # the class, not the message, is logged

    async def test_a_slow_channel_does_not_hold_up_notify(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        webhook_server.hold = asyncio.Event()
        notifier = make_notifier(webhook_channel(webhook_server))
        assert notifier.notify(create_alert(key="first"))
        await asyncio.wait_for(webhook_server.arrived.wait(), 5)  # the worker now waits on it

        assert notifier.notify(create_alert(key="second"))  # returns while the POST hangs
        assert outcomes == []  # the first delivery has not completed
        assert len(webhook_server.requests) == 1

        webhook_server.hold.set()
        await settle(notifier)
        assert outcomes == [("webhook", True), ("webhook", True)]

    async def test_a_full_queue_drops_the_message_but_keeps_the_count(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server), queue_size=2, start=False)
        assert notifier.notify(create_alert(key="a"))
        assert notifier.notify(create_alert(key="b"))
        with structlog.testing.capture_logs() as logs:
            assert not notifier.notify(create_alert(key="c"))
            assert not notifier.notify(create_alert(key="d"))
        assert notifier.dropped == 2
        assert [entry["event"] for entry in logs] == ["alert_queue_full"]  # once per burst

        notifier.start()
        await settle(notifier)
        assert notifier.notify(create_alert(key="c"))  # not deduped: nothing went out for it
        await settle(notifier)

        bodies = sent_json(webhook_server)
        assert [(body["key"], body["occurrences"]) for body in bodies] == [
            ("a", 1),
            ("b", 1),
            ("c", 2),
        ]

    async def test_a_failing_on_sent_callback_does_not_stop_the_worker(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        def on_sent(channel: str, ok: bool) -> None:
            raise RuntimeError("metrics broke")

        notifier = make_notifier(webhook_channel(webhook_server), on_sent=on_sent)
        notifier.notify(create_alert(key="a"))
        await settle(notifier)
        notifier.notify(create_alert(key="b"))
        await settle(notifier)

        assert len(webhook_server.requests) == 2


class TestClose:
    async def test_queued_alerts_go_out_on_close(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server))
        for key in ("a", "b", "c"):
            notifier.notify(create_alert(key=key))
        await notifier.aclose()

        assert [body["key"] for body in sent_json(webhook_server)] == ["a", "b", "c"]
        assert not notifier.notify(create_alert(key="d"))  # closed: no longer accepted

    async def test_close_is_bounded_when_a_channel_hangs(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier, outcomes: Outcomes
    ) -> None:
        webhook_server.hold = asyncio.Event()
        notifier = make_notifier(webhook_channel(webhook_server), close_grace=0.1)
        notifier.notify(create_alert(key="a"))
        notifier.notify(create_alert(key="b"))
        await asyncio.wait_for(webhook_server.arrived.wait(), 5)

        with structlog.testing.capture_logs() as logs:
            await asyncio.wait_for(notifier.aclose(), 5)

        assert outcomes == []
        abandoned = [entry for entry in logs if entry["event"] == "alerts_abandoned"]
        assert [entry["count"] for entry in abandoned] == [1]

    async def test_drain_refuses_to_wait_for_a_worker_that_never_started(
        self, webhook_server: WebhookReceiver, make_notifier: MakeNotifier
    ) -> None:
        notifier = make_notifier(webhook_channel(webhook_server), start=False)
        notifier.notify(create_alert())
        with pytest.raises(RuntimeError, match="not running"):
            await notifier.drain()
