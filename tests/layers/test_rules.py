"""Every deadline rule of layers.rules at its edges, on cases written out by hand.

Each test states the case, the data date and what a clerk must see; the same rule is read
through the state, the work list and the metric count, which must agree.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest

from geo.settings import Settings
from geo.store import Store
from layers.casedata import case_table
from layers.lists import case_list
from layers.metrics import compute_metrics
from layers.rules import Rules, case_state, deadline_text, due_soon_window
from tests.layers.conftest import V1S, case, insert_cases

SETTINGS = Settings()


def _store(engine, *rows) -> Store:
    insert_cases(engine, list(rows))
    return Store(engine, SETTINGS)


def _state(store: Store, as_of):
    table = case_table(store)
    return table, case_state(table, Rules.of(store.settings), as_of)


def _listed(store: Store, name: str, as_of) -> list[str]:
    return list(case_list(store, V1S, name, as_of=as_of).rows["case_id"])


def _count(store: Store, column: str, as_of) -> int:
    frame = compute_metrics(store, level="village", as_of=as_of)
    return int(frame.loc[frame["code"] == V1S, column].iloc[0])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
@pytest.mark.parametrize(("as_of", "pending", "overdue", "soon", "left"), [
    (datetime(2025, 6, 12, 23, 0), True, False, False, 4),  # day 11: not yet 临期
    (datetime(2025, 6, 13, 8, 0), True, False, True, 3),  # day 12 = 80 % of 15: 临期
    (datetime(2025, 6, 16, 23, 59), True, False, True, 0),  # the limit day itself: on time
    (datetime(2025, 6, 17, 0, 1), True, True, False, -1),  # the day after: one day overdue
])
def test_acceptance_limit_is_registration_plus_15_days(tiny_engine, as_of, pending, overdue,
                                                       soon, left):
    store = _store(tiny_engine, case(V1S, case_id="A", registered_at=datetime(2025, 6, 1, 10)))
    _table, state = _state(store, as_of)
    assert (state.acceptance_pending[0], state.acceptance_overdue[0],
            state.acceptance_due_soon[0]) == (pending, overdue, soon)
    assert state.days_left("acceptance", np.array([0]))[0] == left
    assert _listed(store, "acceptance_overdue", as_of) == (["A"] if overdue else [])
    assert _count(store, "acceptance_overdue", as_of) == int(overdue)
    assert _count(store, "acceptance_due_soon", as_of) == int(soon)
    assert state.urgency[0] == (3 if overdue else 2 if soon else 1)


def test_a_case_accepted_late_is_no_longer_pending_but_counts_as_late(tiny_engine):
    late = case(V1S, case_id="L", registered_at=datetime(2025, 6, 1, 10),
                accepted_at=datetime(2025, 6, 20, 9))
    store = _store(tiny_engine, late)
    _table, state = _state(store, date(2025, 6, 25))
    assert not state.acceptance_pending[0] and state.accepted[0]
    row = compute_metrics(store, level="village", as_of=date(2025, 6, 25)).set_index("code")
    assert (row.loc[V1S, "timely_acceptance_num"], row.loc[V1S, "timely_acceptance_den"]) == (0, 1)
    # before the acceptance was recorded, the same case was overdue for acceptance
    _table, before = _state(store, date(2025, 6, 18))
    assert before.acceptance_overdue[0] and _listed(store, "acceptance", date(2025, 6, 18)) == ["L"]


def test_not_accepted_ends_the_case_once_decided(tiny_engine):
    refused = case(V1S, case_id="N", registered_at=datetime(2025, 6, 1, 10),
                   accepted_at=datetime(2025, 6, 5, 9), status="not_accepted")
    store = _store(tiny_engine, refused)
    _table, after = _state(store, date(2025, 6, 30))
    assert after.not_accepted[0] and not after.open[0] and not after.acceptance_pending[0]
    assert _listed(store, "open", date(2025, 6, 30)) == []
    _table, before = _state(store, date(2025, 6, 3))  # the decision lies after this data date
    assert before.open[0] and before.acceptance_pending[0]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
@pytest.mark.parametrize(("as_of", "overdue", "text"), [
    (datetime(2025, 8, 1, 15, 0), False, "今日到期"),  # due at 10:00 on the data date: on time
    (datetime(2025, 8, 2, 0, 30), True, "超期 1 天"),
    (datetime(2025, 7, 31, 9, 0), False, "剩 1 天"),
])
def test_handling_limit_is_judged_by_calendar_day(tiny_engine, as_of, overdue, text):
    store = _store(tiny_engine, case(V1S, case_id="H", registered_at=datetime(2025, 6, 1),
                                     accepted_at=datetime(2025, 6, 2),
                                     due_at=datetime(2025, 8, 1, 10, 0)))
    rows = case_list(store, V1S, "open", as_of=as_of).rows
    assert rows["deadline_text"].tolist() == [text]
    assert _listed(store, "overdue", as_of) == (["H"] if overdue else [])
    assert _count(store, "overdue_open", as_of) == int(overdue)


def test_days_overdue_are_whole_days(tiny_engine):
    store = _store(tiny_engine, case(V1S, case_id="D", registered_at=datetime(2026, 9, 1),
                                     accepted_at=datetime(2026, 9, 2),
                                     due_at=datetime(2026, 11, 20, 18, 0)))
    rows = case_list(store, V1S, "overdue", as_of=datetime(2026, 12, 1, 9, 0)).rows
    assert rows["days_left"].tolist() == [-11] and rows["deadline_text"].tolist() == ["超期 11 天"]


def test_an_extension_moves_the_limit_and_the_due_soon_window(tiny_engine):
    plain = case(V1S, case_id="P", registered_at=datetime(2025, 6, 1), accepted_at=datetime(
        2025, 6, 1, 9))
    extended = case(V1S, case_id="E", registered_at=datetime(2025, 6, 1),
                    accepted_at=datetime(2025, 6, 1, 9), extended=True)
    store = _store(tiny_engine, plain, extended)
    rules = Rules.of(SETTINGS)
    assert due_soon_window(rules, 60) == 12 and due_soon_window(rules, 90) == 18
    # 60 days from 06-01: due 07-31, 临期 from 07-19; extended: due 08-30, 临期 from 08-12
    assert _listed(store, "due_soon", date(2025, 7, 18)) == []
    assert _listed(store, "due_soon", date(2025, 7, 19)) == ["P"]
    assert _listed(store, "overdue", date(2025, 8, 1)) == ["P"]
    assert _listed(store, "due_soon", date(2025, 8, 12)) == ["E"]
    assert _listed(store, "overdue", date(2025, 8, 31)) == ["P", "E"]
    assert _count(store, "due_soon", date(2025, 8, 12)) == 1


@pytest.mark.parametrize(("as_of", "pending", "overdue"), [
    (date(2025, 6, 16), True, False),  # reply 06-01 + 15 days: the limit day
    (date(2025, 6, 17), True, True),
])
def test_follow_up_is_due_after_the_reply(tiny_engine, as_of, pending, overdue):
    store = _store(tiny_engine, case(V1S, case_id="F", registered_at=datetime(2025, 4, 1),
                                     accepted_at=datetime(2025, 4, 2),
                                     replied_at=datetime(2025, 6, 1, 17)))
    rows = case_list(store, V1S, "followup", as_of=as_of).rows
    assert rows["case_id"].tolist() == ["F"] and rows["waited_days"].tolist() == [
        (as_of - date(2025, 6, 1)).days]
    assert _count(store, "followup_overdue", as_of) == int(overdue)
    assert _count(store, "followup_pending", as_of) == int(pending)


def test_a_follow_up_clears_it(tiny_engine):
    store = _store(tiny_engine, case(V1S, case_id="F", registered_at=datetime(2025, 4, 1),
                                     replied_at=datetime(2025, 6, 1),
                                     followed_up_at=datetime(2025, 6, 3)))
    assert _listed(store, "followup", date(2025, 6, 2)) == ["F"]
    assert _listed(store, "followup", date(2025, 6, 4)) == []


@pytest.mark.parametrize(("as_of", "pending", "expired"), [
    (date(2025, 7, 1), True, False),  # reply 06-01 + 30 days: the window's last day
    (date(2025, 7, 2), False, True),
])
def test_rating_window(tiny_engine, as_of, pending, expired):
    store = _store(tiny_engine, case(V1S, case_id="R", registered_at=datetime(2025, 4, 1),
                                     replied_at=datetime(2025, 6, 1, 12)))
    _table, state = _state(store, as_of)
    assert (state.rating_pending[0], state.rating_expired[0]) == (pending, expired)
    assert _listed(store, "rating", as_of) == (["R"] if pending else [])
    frame = compute_metrics(store, level="village", as_of=as_of).set_index("code")
    assert frame.loc[V1S, "rating_pending"] == int(pending)
    assert frame.loc[V1S, "participation_den"] == int(expired)


def test_a_stored_expired_state_is_expired_everywhere(tiny_engine):
    # the source says 超期未评价 although the window would still be open: lists agree
    store = _store(tiny_engine, case(V1S, case_id="S", registered_at=datetime(2025, 4, 1),
                                     replied_at=datetime(2025, 6, 20), rating_state="超期未评价"))
    assert _listed(store, "rating", date(2025, 6, 25)) == []
    assert _count(store, "participation_den", date(2025, 6, 25)) == 1


def test_backlog_open_and_resolved_with_its_age(tiny_engine):
    open_ = case(V1S, case_id="B1", registered_at=datetime(2025, 1, 1), is_backlog=True,
                 backlog_leader="王副区长", backlog_at=datetime(2025, 3, 1))
    resolved = case(V1S, case_id="B2", registered_at=datetime(2025, 1, 1), is_backlog=True,
                    closed_at=datetime(2025, 5, 1))
    store = _store(tiny_engine, open_, resolved)
    rows = case_list(store, V1S, "backlog_open", as_of=date(2025, 6, 30)).rows
    assert rows["case_id"].tolist() == ["B1"] and rows["waited_days"].tolist() == [121]
    assert _listed(store, "backlog_resolved", date(2025, 6, 30)) == ["B2"]
    frame = compute_metrics(store, level="village", as_of=date(2025, 6, 30)).set_index("code")
    assert (frame.loc[V1S, "backlog_open"], frame.loc[V1S, "backlog_resolved"],
            frame.loc[V1S, "backlog_clearance_num"]) == (1, 1, 1)


def test_deadline_text():
    assert [deadline_text(v) for v in (3, 0, -11, None)] == ["剩 3 天", "今日到期", "超期 11 天", ""]


def test_packed_masks_read_back_whole_and_at_rows():
    """Masks are stored packed; reading some rows gives the same bits as the whole mask."""
    from layers.rules import MASKS, CaseState

    rng = np.random.default_rng(5)
    n = 1_003  # not a multiple of 8: the last byte is partly padding
    masks = {name: rng.random(n) < rng.random() for name in MASKS}
    state = CaseState(table=None, rules=Rules.of(SETTINGS), as_of=0, as_of_day=0,
                      urgency=np.zeros(n, dtype=np.int8),
                      packed={name: np.packbits(m) for name, m in masks.items()})
    rows = rng.integers(0, n, 200)
    for name, expected in masks.items():
        assert np.array_equal(getattr(state, name), expected)
        assert np.array_equal(state.mask(name, rows), expected[rows])
        assert np.array_equal(state.mask(name, expected), expected[expected])  # by a mask
    with pytest.raises(KeyError):
        state.mask("urgency")
