"""The load test's users: the role mix, and one account of its own for every simulated user."""

from __future__ import annotations

from collections import Counter

from bench.load_mix import role_and_account, role_counts, roles

MIX = {"grid_worker": 45, "street": 30, "district": 15, "city": 10}


def test_every_twenty_users_hold_the_mix():
    order = roles(MIX)
    assert Counter(order) == {"grid_worker": 9, "street": 6, "district": 3, "city": 2}
    assert role_counts(50, order) == {"grid_worker": 21, "street": 15, "district": 8, "city": 6}


def test_every_user_of_a_role_has_an_account_of_its_own():
    order = roles(MIX)
    users = [role_and_account(n, order) for n in range(50)]
    assert len(set(users)) == 50  # no two users share (role, account)
    counts = role_counts(50, order)
    for role, count in counts.items():  # accounts 0 … count-1, as the plan creates them
        assert sorted(a for r, a in users if r == role) == list(range(count))
