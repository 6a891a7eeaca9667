"""Cases an office should place by hand (待更正落格): read only to the street by their address.

An address that names a street but no village, or a village name the street holds twice, or
one that conflicts with the street, leaves the case at street level (``attach_method``
``address``, no village) with the reason and the candidates the text could mean
(:mod:`etl.address`). Such a case counts for its street and district but is in no village's
list, so no grid worker follows it up: the street office that knows the place corrects it
(``etl.corrections.correct_village``, an audited event that later loads keep). This module
only finds them and says what the text could mean; the correction itself is the ETL's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.privacy import mask_text
from geo.store import Store
from layers.casedata import as_datetime64, case_table
from layers.lists import display_columns
from layers.units import children_of, picker_labels

DEFAULT_LIMIT = 100
"""Rows shown at most (oldest first); ``total`` counts them all."""
ROW_COLUMNS = ("case_id", "registered_at", "address", "attach_note", "candidates")


@dataclass(frozen=True)
class PlacementQueue:
    """The street-level cases of one street that wait for a village, oldest first.

    Attributes
    ----------
    total
        How many there are (all periods: a case placed wrongly stays so until corrected).
    rows
        The first ``limit`` of them: case_id, registered_at, address (phone and ID numbers
        masked), attach_note (why not finer), candidates (the candidate villages'
        名称（镇街，区）, joined with 、).
    candidates
        Case id → the candidate village codes that lie in this street (the picker lists
        these first).
    """

    total: int
    rows: pd.DataFrame
    candidates: dict[str, list[str]]


def street_level_rows(store: Store, street_code: str) -> np.ndarray:
    """Positions in the case table of the street's cases placed only to it by address."""
    table = case_table(store)
    chosen = (table.in_unit(street_code) & table.is_missing("village_code")
              & table.is_value("attach_method", ("address",)))
    rows = np.flatnonzero(chosen)
    return rows[np.argsort(table.minutes("registered_at")[rows], kind="stable")]


def placement_queue(store: Store, street_code: str, *, limit: int = DEFAULT_LIMIT
                    ) -> PlacementQueue:
    """Return the street's cases that wait for a village, with what their address could mean."""
    table = case_table(store)
    rows = street_level_rows(store, street_code)
    shown = rows[:limit]
    ids = list(table.case_id.take(shown))
    if not ids:
        return PlacementQueue(total=0, rows=pd.DataFrame(columns=list(ROW_COLUMNS)),
                              candidates={})
    extra = display_columns(store.engine, ids, ("address", "attach_note", "attach_candidates"))
    extra = extra.reindex(ids)
    inside = set(children_of(store, street_code, level="village")["code"])
    candidates = {case_id: [code for code in candidate_codes(text) if code in inside]
                  for case_id, text in zip(ids, extra["attach_candidates"], strict=True)}
    labels = dict(zip(sorted({c for codes in candidates.values() for c in codes}),
                      picker_labels(store, sorted({c for codes in candidates.values()
                                                   for c in codes})), strict=True))
    frame = pd.DataFrame({
        "case_id": ids,
        "registered_at": as_datetime64(table.minutes("registered_at")[shown]),
        "address": [mask_text(v) for v in extra["address"].to_numpy(dtype=object)],
        "attach_note": extra["attach_note"].to_numpy(dtype=object),
        "candidates": ["、".join(labels[c] for c in candidates[i]) or "—" for i in ids],
    })
    return PlacementQueue(total=len(rows), rows=frame, candidates=candidates)


def candidate_codes(text: str | None) -> list[str]:
    """The unit codes of an ``attach_candidates`` value (``'code 名称; code 名称'``)."""
    if not isinstance(text, str):
        return []
    codes = []
    for part in text.split(";"):
        code = part.strip().split(" ", 1)[0]
        if code.isdigit() and code not in codes:
            codes.append(code)
    return codes


def village_choices(store: Store, street_code: str, case_id: str,
                    queue: PlacementQueue | None = None) -> list[str]:
    """The villages a case of the street may be put in: its candidates first, then the rest."""
    first = (queue.candidates.get(case_id, []) if queue is not None else [])
    rest = [c for c in children_of(store, street_code, level="village")["code"]
            if c not in first]
    return [*first, *rest]
