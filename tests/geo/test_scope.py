"""The scope rule: a unit is inside a scope when its code nests under the scope's code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import CodeError
from geo.scope import Scope, unit_within

CITY, DISTRICT, STREET, VILLAGE = "440100000000", "440103000000", "440103001000", "440103001001"
GRID = VILLAGE + "002"


@pytest.mark.parametrize(("scope", "inside", "outside"), [
    (Scope("city", CITY), [CITY, DISTRICT, STREET, VILLAGE, GRID], ["440200000000"]),
    (Scope("district", DISTRICT), [DISTRICT, STREET, VILLAGE, GRID],
     [CITY, "440104000000", "440104001001"]),
    (Scope("street", STREET), [STREET, VILLAGE, GRID], [DISTRICT, "440103101000",
                                                         "440103101001"]),
    (Scope("grid_worker", VILLAGE), [VILLAGE, GRID], [STREET, "440103001201"]),
    (Scope("grid_worker", GRID), [GRID], [VILLAGE, VILLAGE + "001", STREET]),
    (Scope("admin", None), [], [CITY, DISTRICT, VILLAGE]),
    (Scope("admin", STREET), [STREET, VILLAGE], [DISTRICT]),
])
def test_units_inside_and_outside_each_scope(scope, inside, outside):
    assert all(scope.allows_unit(code) for code in inside)
    assert not any(scope.allows_unit(code) for code in outside)
    assert not scope.allows_unit("not-a-code") and not scope.allows_unit(None)


def test_unassigned_cases_belong_to_the_city_alone_and_roles_reveal():
    assert Scope("city", CITY).allows_case_unit(None)
    assert not Scope("district", DISTRICT).allows_case_unit(None)
    assert Scope("street", STREET).allows_case_unit(VILLAGE)
    assert not Scope("grid_worker", VILLAGE).allows_case_unit(STREET)  # coarser than the scope
    assert [Scope(r, c).can_reveal for r, c in (("grid_worker", VILLAGE), ("street", STREET),
                                                 ("district", DISTRICT), ("city", CITY),
                                                 ("admin", None))] == [True, True, False, False,
                                                                       False]
    assert not Scope("admin", None).sees_data


@pytest.mark.parametrize(("role", "code"), [("grid_worker", STREET), ("street", VILLAGE),
                                            ("district", CITY), ("city", DISTRICT),
                                            ("street", None), ("boss", CITY)])
def test_a_role_holds_only_its_levels(role, code):
    with pytest.raises(CodeError):
        Scope(role, code)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12),
       st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_within_is_prefix_nesting(code, scope_code):
    from geo.codes import level_of, prefix_of

    try:
        level_of(code), level_of(scope_code)
    except CodeError:
        assert not unit_within(code, scope_code)
        return
    expected = code.startswith(prefix_of(scope_code)) and len(prefix_of(code)) >= len(
        prefix_of(scope_code))
    assert unit_within(code, scope_code) == expected
