"""The in-process moving windows: exact, and their memory shrinks as clients go quiet."""

from __future__ import annotations

import pytest
from limits import parse

from session_service.ratelimit.limiter import InProcessWindows


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("session_service.ratelimit.limiter.time.time", fake)
    return fake


async def test_never_more_than_the_limit_in_any_window(clock: Clock) -> None:
    windows, item = InProcessWindows(), parse("3/minute")
    allowed = []
    for _ in range(40):  # one call every 10 s for 400 s
        allowed.append(await windows.hit(item, "create", "1.2.3.4"))
        clock.now += 10
    # Calls at 0, 10, 20 pass; 30-50 refused; 60 frees the slot of 0, and so on.
    assert allowed[:8] == [True, True, True, False, False, False, True, True]
    for start in range(len(allowed)):
        assert sum(allowed[start : start + 6]) <= 3  # any 60 s span


async def test_stats_say_when_a_slot_frees(clock: Clock) -> None:
    windows, item = InProcessWindows(), parse("2/minute")
    await windows.hit(item, "k")
    clock.now += 15
    await windows.hit(item, "k")
    stats = await windows.get_window_stats(item, "k")
    assert stats.remaining == 0
    assert stats.reset_time == pytest.approx(clock.now - 15 + 60)


async def test_keys_are_separate(clock: Clock) -> None:
    windows, item = InProcessWindows(), parse("1/minute")
    assert await windows.hit(item, "create", "a")
    assert await windows.hit(item, "create", "b")
    assert await windows.hit(item, "reset", "a")
    assert not await windows.hit(item, "create", "a")


async def test_quiet_clients_are_forgotten(clock: Clock) -> None:
    windows, item = InProcessWindows(), parse("5/minute")
    for n in range(10_000):
        await windows.hit(item, "validate", f"10.0.{n // 256}.{n % 256}")
    assert len(windows.windows) == 10_000
    clock.now += 61
    await windows.hit(item, "validate", "192.0.2.1")
    assert list(windows.windows) == [item.key_for("validate", "192.0.2.1")]
