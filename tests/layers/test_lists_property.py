"""Property: every work list is exactly as long as the metric count it stands for.

For random case sets, data dates and filters, at every level (village, street, district,
city), the length of each list of layers.lists equals the matching count of
layers.metrics.compute_metrics (超期未办结 list = 超期未办结, 待受理 = its count, 待评价 =
rating pending, …): one rule, read two ways. Runs on SQLite only: both read the same columnar
table, which the backend tests already check on PostGIS.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import schema
from geo.settings import Settings
from geo.store import Store, bump_version
from layers.filters import Filters
from layers.lists import LISTS, case_list
from layers.metrics import compute_metrics
from tests.layers.conftest import S1, VILLAGES, case, insert_cases

START = datetime(2025, 1, 1, 8, 0)


@pytest.fixture(scope="module")
def sqlite_tiny(tmp_path_factory):
    from geo.grid import load_units
    from geo.store import make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lists') / 'lists.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled")
    yield engine
    engine.dispose()


def _at(draw, base: datetime, low: int, high: int) -> datetime:
    return base + timedelta(days=draw(st.integers(low, high)), hours=draw(st.integers(0, 23)))


@st.composite
def lifecycle(draw):
    """A case at any stage: registered, accepted or not, replied, closed, followed up, rated."""
    registered = _at(draw, START, 0, 200)
    fields = {"registered_at": registered, "is_repeat": draw(st.booleans()),
              "is_backlog": draw(st.booleans()), "extended": draw(st.booleans())}
    if fields["is_backlog"] and draw(st.booleans()):
        fields["backlog_at"] = _at(draw, registered, 0, 60)
        fields["backlog_leader"] = draw(st.sampled_from([None, "王副区长"]))
    stage = draw(st.sampled_from(["registered", "not_accepted", "accepted", "replied",
                                  "closed"]))
    if stage == "not_accepted":
        fields.update(status="not_accepted", accepted_at=_at(draw, registered, 0, 20))
        return fields
    if stage == "registered":
        return fields
    accepted = _at(draw, registered, 0, 25)
    fields["accepted_at"] = accepted
    if draw(st.booleans()):
        fields["due_at"] = _at(draw, accepted, 30, 90)
    if stage == "accepted":
        return fields
    replied = _at(draw, accepted, 0, 100)
    fields["replied_at"] = replied
    if stage == "closed":
        fields["closed_at"] = replied + timedelta(days=draw(st.integers(0, 5)))
    if draw(st.booleans()):
        fields["followed_up_at"] = _at(draw, replied, 0, 30)
    rating = draw(st.sampled_from([None, "满意", "基本满意", "不满意"]))
    if rating:
        fields.update(rating=rating, rated_at=_at(draw, replied, 0, 40))
    elif draw(st.integers(0, 4)) == 0:
        fields["rating_state"] = "超期未评价"
    return fields


@st.composite
def case_sets(draw):
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        place = draw(st.sampled_from([*VILLAGES, None, "street-only"]))
        fields = draw(lifecycle())
        fields["category"] = draw(st.sampled_from(["城乡建设", "劳动和社会保障"]))
        if place == "street-only":
            rows.append(case(None, street_code=S1, district_code=S1[:6] + "000000",
                             attach_method="code", **fields))
        else:
            rows.append(case(place, **fields))
    return rows


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=case_sets(), as_of_days=st.integers(0, 400), window=st.booleans(),
       category=st.booleans(), status=st.sampled_from([(), ("open",), ("overdue",)]))
def test_every_list_is_as_long_as_its_count(sqlite_tiny, rows, as_of_days, window, category,
                                            status):
    with sqlite_tiny.begin() as conn:
        conn.execute(sa.delete(schema.cases))
        bump_version(conn)
    insert_cases(sqlite_tiny, rows)
    store = Store(sqlite_tiny, Settings())
    as_of = START + timedelta(days=as_of_days, hours=11)
    filters = Filters(date_from=date(2025, 2, 1) if window else None,
                      date_to=date(2025, 6, 30) if window else None,
                      category=("城乡建设",) if category else (), status=status)
    for level in ("village", "street", "district"):
        frame = compute_metrics(store, level=level, filters=filters, as_of=as_of)
        units = frame[frame["row_type"].isin(["unit", "city"])]
        for code, counts in zip(units["code"], units.to_dict("records"), strict=True):
            for name, rule in LISTS.items():
                listed = case_list(store, code, name, filters=filters, as_of=as_of, limit=0)
                assert listed.total == counts[rule.count], (level, code, name)
