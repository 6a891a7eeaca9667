"""Cases as service requests (Open311 ``GET requests``): selected in the case table, scope first.

The API reads cases the way every screen does: the scope mask of :mod:`layers.access` and the
open rule of :mod:`layers.rules` over the columnar case table (:mod:`layers.casedata`), and only
then the display columns of the chosen case ids from SQL (:func:`layers.lists.display_columns`).
So "open" means 未办结 here exactly as on the dashboard, and a key never gets a case outside its
unit. Free text (信访内容, 地址) has its phone and ID numbers masked (:func:`geo.privacy.mask_text`);
names and phones are not read at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from geo.privacy import mask_text
from geo.scope import Scope
from geo.store import Store
from layers.access import scope_mask
from layers.casedata import NULL, case_table, minutes_of
from layers.lists import display_columns
from layers.rules import Rules, case_state

MAX_REQUESTS = 1_000
"""At most this many requests in one answer (the Open311 default)."""
READ_COLUMNS = ("status", "category", "description", "address", "lat", "lon", "registered_at",
                "updated_at", "due_at", "handling_unit", "village_code", "street_code",
                "district_code", "closed_at")


@dataclass(frozen=True)
class RequestQuery:
    """What ``GET requests`` asks: ids (override the rest), or a window, categories, status."""

    ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: tuple[str, ...] = ()
    """``open`` / ``closed``; empty: both."""
    limit: int = MAX_REQUESTS


def find_requests(store: Store, scope: Scope, query: RequestQuery) -> pd.DataFrame:
    """Return the scope's cases matching ``query``, newest first, display columns masked.

    Returns
    -------
    DataFrame
        Indexed by case id: :data:`READ_COLUMNS` plus ``open`` (未办结 by the rules), at most
        ``query.limit`` rows. Unknown ids and ids outside the scope are simply absent.
    """
    table = case_table(store)
    wanted = scope_mask(store, scope)
    state = case_state(table, Rules.of(store.settings))
    if query.ids:
        rows = np.array([table.position_of(i) for i in query.ids], dtype=np.int64)
        chosen = np.zeros(len(table), dtype=bool)
        chosen[rows[rows >= 0]] = True
        wanted = wanted & chosen
    else:
        registered = table.minutes("registered_at")
        if query.start is not None:
            wanted = wanted & (registered >= minutes_of(query.start))
        if query.end is not None:
            wanted = wanted & (registered <= minutes_of(query.end)) & (registered != NULL)
        if query.categories:
            wanted = wanted & table.is_value("category", list(query.categories))
        if query.status and set(query.status) != {"open", "closed"}:
            wanted = wanted & (state.open if "open" in query.status else ~state.open)
    rows = np.flatnonzero(wanted)
    order = np.argsort(-table.minutes("registered_at")[rows].astype(np.int64), kind="stable")
    rows = rows[order][: query.limit]
    ids = list(table.case_id.take(rows))
    frame = display_columns(store.engine, ids, READ_COLUMNS).reindex(ids)
    frame["open"] = state.open[rows]
    for column in ("description", "address"):
        frame[column] = frame[column].map(mask_text)
    return frame
