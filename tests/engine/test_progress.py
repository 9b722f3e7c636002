"""Progress estimates (pure arithmetic) and the plain lines written when stderr is no terminal."""

from __future__ import annotations

import logging

import pytest

from dmt.engine import progress as P


def test_loop_eta_is_the_mean_rate_times_what_is_left() -> None:
    assert P.loop_eta(0, 10, 5.0) is None  # no rate yet
    assert P.loop_eta(4, 10, 8.0) == pytest.approx(12.0)  # 2 s per unit, 6 left
    assert P.loop_eta(10, 10, 8.0) == 0.0


def test_stage_eta_takes_the_longer_of_loop_and_similar_stage() -> None:
    assert P.stage_eta(30.0, 100.0, None) == 30.0
    assert P.stage_eta(30.0, 100.0, 200.0) == 100.0  # a like stage took 200 s, 100 s have passed
    assert P.stage_eta(30.0, 100.0, 110.0) == 30.0
    assert P.stage_eta(None, 100.0, 90.0) == 0.0  # overdue: never negative
    assert P.stage_eta(None, 1.0, None) is None


def test_expected_wall_prefers_same_kind() -> None:
    finished = [("baseline", 10.0), ("phase", 20.0), ("phase", 40.0)]
    assert P.expected_wall("phase", finished) == 30.0
    assert P.expected_wall("oracle", finished) == pytest.approx(70.0 / 3)  # none of its kind: all
    assert P.expected_wall("phase", []) is None


def test_run_eta_adds_an_estimate_for_every_remaining_stage() -> None:
    finished = [("baseline", 10.0), ("phase", 20.0)]
    # 5 s left here, then two phases (20 s each) and an oracle (mean of all: 15 s)
    assert P.run_eta(5.0, 25.0, ["phase", "phase", "oracle"], finished) == pytest.approx(60.0)
    # first stage: later stages are guessed as long as this one
    assert P.run_eta(5.0, 12.0, ["phase", "oracle"], []) == pytest.approx(29.0)
    assert P.run_eta(None, None, ["phase"], finished) is None
    assert P.run_eta(5.0, None, ["phase"], []) is None


def test_run_clock_combines_loop_stage_and_run() -> None:
    clock = P.RunClock("phase", ["phase", "oracle"], [("baseline", 10.0), ("phase", 50.0)], lambda: 20.0)
    stage_left, run_left = clock.estimates(5.0)
    assert stage_left == 30.0  # the finished phase took 50 s, this one has run 20 s
    assert run_left == pytest.approx(30.0 + 50.0 + 30.0)  # + a phase (50) + oracle (mean of all, 30)


def test_format_duration() -> None:
    assert P.format_duration(None) == "?"
    assert P.format_duration(float("nan")) == "?"
    assert P.format_duration(42.4) == "42s"
    assert P.format_duration(75) == "1m15s"
    assert P.format_duration(3720) == "1h02m"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    # one record per call: after an in-process `main()` the same record can reach caplog's handler
    # both through the "dmt" logger and through the root logger
    unique = {id(r): r for r in caplog.records if r.name == "dmt"}
    return [r.getMessage() for r in unique.values()]


def test_non_tty_writes_periodic_plain_lines(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setattr(P, "LINE_SECONDS", 30.0)
    run = P.RunClock("phase", ["oracle"], [("phase", 100.0)], lambda: 40.0)
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="dmt")
    logger = logging.getLogger("dmt")
    old = logger.propagate
    logger.propagate = True  # let caplog see the records
    try:
        with P.Progress("phase2 train", total=1000, steps_per_epoch=100, tty=False, clock=clock, run=run) as bar:
            for _ in range(50):  # 5 %: below the first 10 % line; 0.1 s per step
                clock.t += 0.1
                bar.advance()
            assert _lines(caplog) == []
            clock.t += 30.0  # a long silence: a line although no milestone was reached
            bar.advance(loss=0.5)
            lines = _lines(caplog)
            assert len(lines) == 1
            # 51 units in 35 s -> 949 left at 35/51 s each: 651 s
            assert lines[0].startswith("phase2 train: 51/1000 (5%, 35s, ETA 10m51s")
            # stage: the loop (651 s) is longer than the like stage's 100 - 40 s; run: + oracle 100 s
            assert "stage ~10m51s, run ~12m31s" in lines[0]
            assert "epoch 1/10" in lines[0] and "loss 0.5" in lines[0]
            bar.advance(49)  # 10 %: the milestone line
            assert len(_lines(caplog)) == 2 and "100/1000 (10%" in _lines(caplog)[1]
            assert "epoch 2/10" in _lines(caplog)[1]
    finally:
        logger.propagate = old


def test_non_tty_without_clock_shows_the_loop_eta_only(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="dmt")
    logger = logging.getLogger("dmt")
    old = logger.propagate
    logger.propagate = True
    try:
        with P.Progress("eval val", total=4, tty=False, clock=clock) as bar:
            for _ in range(4):
                clock.t += 2.0
                bar.advance()
    finally:
        logger.propagate = old
    lines = _lines(caplog)
    assert lines[-1] == "eval val: 4/4 (100%, 8s, ETA 0s) "
    assert all("stage ~" not in line for line in lines)


def test_resumed_loop_rates_only_this_sessions_work() -> None:
    clock = FakeClock()
    bar = P.Progress("x", total=100, start=90, tty=False, clock=clock)
    clock.t = 10.0
    bar.done = 95  # 5 units in 10 s: 5 left -> 10 s, not 90 units' worth of history
    assert bar._eta(clock.t) == "ETA 10s"


def _plain_lines(caplog: pytest.LogCaptureFixture, enabled: bool) -> list[str]:
    caplog.set_level(logging.INFO, logger="dmt")
    logger = logging.getLogger("dmt")
    old = logger.propagate
    logger.propagate = True
    try:
        with P.Progress("eval val", total=2, enabled=enabled, tty=False, clock=FakeClock()) as bar:
            bar.advance(2)
    finally:
        logger.propagate = old
    return _lines(caplog)


def test_whether_a_loop_reports_is_its_callers_word_alone(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    import sys
    import types

    # a process group that says "not rank 0", wherever it could be looked up, changes nothing:
    # the caller decides (Processes.shows_progress), not what happens to be imported
    fake = types.SimpleNamespace(is_main=lambda: False, job_rank=lambda: 1)
    monkeypatch.setitem(sys.modules, "dmt.engine.distributed", fake)
    assert _plain_lines(caplog, enabled=True) == ["eval val: 2/2 (100%, 0s, ETA 0s) "]
    caplog.clear()
    assert _plain_lines(caplog, enabled=False) == []


def test_which_process_shows_progress() -> None:
    from dmt.engine.distributed import ONE, Processes

    assert ONE.shows_progress(tty=True) and ONE.shows_progress(tty=False)
    job_1 = Processes(rank=1, size=4, job_rank=1)
    assert not job_1.shows_progress(tty=False) and not job_1.shows_progress(tty=True)
    # rank 0 of the second share (job rank 2): log lines, but no second bar on the one terminal
    share_main = Processes(rank=0, size=2, job_rank=2)
    assert share_main.shows_progress(tty=False) and not share_main.shows_progress(tty=True)
    assert Processes(rank=0, size=2, job_rank=0).shows_progress(tty=True)


def test_a_display_hands_its_loops_the_run_clock_and_nothing_else_does(caplog: pytest.LogCaptureFixture) -> None:
    """Two displays in one process, one with a run clock and one without: each loop shows what its
    own display holds (no clock is installed anywhere for the length of a stage)."""
    run = P.RunClock("phase", ["oracle"], [("phase", 100.0)], lambda: 40.0)
    with_clock, plain = P.Display(True, run), P.Display(True)
    caplog.set_level(logging.INFO, logger="dmt")
    logger = logging.getLogger("dmt")
    old, logger.propagate = logger.propagate, True
    try:
        for display in (with_clock, plain, with_clock):
            bar = display("eval", 10)
            bar._tty = False  # plain lines, as under CI
            with bar:
                bar.advance(10)
        lines = _lines(caplog)
        assert len(lines) == 3
        assert ["run ~" in line for line in lines] == [True, False, True]
        assert P.Display(False)("eval", 10).enabled is False
    finally:
        logger.propagate = old
