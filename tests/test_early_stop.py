"""The front-aware early-stopping rule for multi-objective searches."""

from __future__ import annotations

from autocompress.search._early_stop import Completed, FrontStopper


def _stopper() -> FrontStopper:
    s = FrontStopper(margin=0.01, min_curves=2)
    # two finished candidates; each gained at most 0.05 after step 50
    s.add(Completed(size=10.0, latency=1.0, metric=0.95, curve={50: 0.90, 100: 0.95}))
    s.add(Completed(size=20.0, latency=2.0, metric=0.97, curve={50: 0.96, 100: 0.97}))
    return s


def test_never_stops_without_enough_curves() -> None:
    s = FrontStopper(min_curves=3)
    s.add(Completed(1.0, 1.0, 0.99, {10: 0.99}))
    assert not s.should_stop(5.0, 5.0, 10, 0.1)


def test_never_stops_a_candidate_nothing_dominates_in_cost() -> None:
    s = _stopper()
    # smaller than every finished point: whatever its metric, it may join the front
    assert s.threshold(5.0, 0.5) is None
    assert not s.should_stop(5.0, 0.5, 50, 0.10)


def test_stops_when_even_the_largest_late_gain_cannot_reach_the_front() -> None:
    s = _stopper()
    # as large and slow as the 0.97 point: needs > 0.97; best late gain is 0.05 + margin 0.01
    assert s.should_stop(25.0, 2.5, 50, 0.90)  # 0.90 + 0.06 < 0.97
    assert not s.should_stop(25.0, 2.5, 50, 0.92)  # 0.92 + 0.06 > 0.97: may still make it


def test_slack_uses_the_latest_checkpoint_at_or_before_the_step() -> None:
    s = _stopper()
    assert abs((s.slack(75) or 0) - 0.06) < 1e-9  # from step 50 -> end
    assert abs((s.slack(100) or 0) - 0.01) < 1e-9  # nothing left to gain, only the margin
