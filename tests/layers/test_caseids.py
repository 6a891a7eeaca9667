"""The compact case numbers of the case table: every text round-trips, lookups find first rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from layers.caseids import CaseIds

ODD = ["XF20261127000123", "WS0001", "A\nB", "A\n12", "abc", "", "1" * 23, "0", "中文123",
       "EWM20261127000001", "=HYPERLINK(\"x\")99", "007", "7"]


def test_every_kind_of_number_round_trips_and_is_found() -> None:
    ids = CaseIds.from_arrow(pa.array(ODD))
    assert list(ids) == ODD
    assert [ids.position(i) for i in ODD] == list(range(len(ODD)))
    assert ids.position("XF20261127000124") == -1 and ids.position("A\n1") == -1
    assert ids[3] == "A\n12" and ids[-1] == "7" and list(ids[1:3]) == ODD[1:3]
    assert set(ids.whole.values()) == {"A\nB", "abc", ""}  # no trailing digits: kept whole


def test_leading_zeros_and_widths_are_distinct_numbers() -> None:
    ids = CaseIds.from_strings(["007", "7", "0007"])
    assert list(ids) == ["007", "7", "0007"]
    assert list(ids.positions(["7", "0007", "007", "07"])) == [1, 2, 0, -1]


def test_a_million_ids_hold_ten_bytes_each() -> None:
    n = 1_000_000
    texts = pa.array([f"XF20261127{i:06d}" for i in range(n)])
    ids = CaseIds.from_arrow(texts)
    assert ids.nbytes == n * 10  # int16 stem + int64 number
    assert texts.nbytes >= 2 * ids.nbytes  # 16 bytes of text and a 4-byte offset each
    assert ids.position("XF20261127999999") == n - 1
    rows = np.array([5, 0, 999_999])
    assert list(ids.take(rows)) == ["XF20261127000005", "XF20261127000000", "XF20261127999999"]


def test_append_merges_stems_and_keeps_the_first_row_of_a_repeat() -> None:
    ids = CaseIds.from_strings(["XF1", "abc"]).append(CaseIds.from_strings(["WS2", "XF1", "x"]))
    assert list(ids) == ["XF1", "abc", "WS2", "XF1", "x"]
    assert list(ids.positions(["XF1", "x", "abc", "WS2"])) == [0, 4, 1, 2]


@given(st.lists(st.text(max_size=24), max_size=40), st.lists(st.text(max_size=24), max_size=5))
def test_any_texts_round_trip_and_append(first: list[str], more: list[str]) -> None:
    ids = CaseIds.from_strings(first).append(CaseIds.from_strings(more))
    everything = first + more
    assert list(ids) == everything
    expected = [everything.index(t) for t in everything]
    assert list(ids.positions(everything)) == expected
