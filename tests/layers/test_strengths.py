"""镇街"两强": absorption shares counted from the cases, strengths against the medians."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from geo import schema
from geo.settings import Settings
from geo.store import Store
from layers.filters import Filters
from layers.strengths import two_strengths
from tests.layers.conftest import CITY, D1, S1


@pytest.fixture
def demo(tiny_engine):
    from etl.demo import build_demo

    build_demo(Store(tiny_engine, Settings()), n_cases=400, seed=5, as_of=date(2025, 6, 30))
    return tiny_engine


def test_absorption_is_the_share_registered_at_street_level_or_below(demo):
    frame = two_strengths(Store(demo, Settings()), D1, filters=Filters()).set_index("code")
    assert set(frame.index) == {S1, "440103101000"}
    c = schema.cases.c
    with demo.connect() as conn:
        rows = conn.execute(sa.select(c.registered_level, sa.func.count()).where(
            c.street_code == S1, c.registered_level.is_not(None)).group_by(
            c.registered_level)).all()
    counts = dict(rows)
    known = sum(counts.values())
    assert frame.loc[S1, "known"] == known
    assert frame.loc[S1, "absorb"] == pytest.approx(
        (counts.get("镇街", 0) + counts.get("村居", 0)) / known)
    assert frame.loc[S1, "skip"] == pytest.approx(
        sum(counts.get(k, 0) for k in ("市", "省", "国家")) / known)


def test_two_strong_streets_are_at_or_above_every_median(demo):
    frame = two_strengths(Store(demo, Settings()), CITY, filters=Filters())
    ranked = frame[frame["ranked"]]
    assert len(frame) == 4 and len(ranked) >= 2
    for _, row in frame[frame["both"]].iterrows():
        for column in ("absorb", "first_time_resolution", "on_time_completion"):
            assert row[column] >= ranked[column].median()
    assert not frame.loc[~frame["ranked"], "both"].any()
