"""Which simulated user of ``bench/bench_load.py`` has which role and which account.

Shared by the plan (``bench_load.py``, which creates one account per user) and the users
(``locust_sessions.py``, which log in as them), so both count the same way.
"""

from __future__ import annotations


def roles(weights: dict[str, int]) -> list[str]:
    """The mix as a repeating sequence (45/30/15/10 → 9, 6, 3, 2 in every 20 users), so every
    run, whatever the server, has the same users in the same roles."""
    step = min(weights.values())
    counts = {role: round(weight / step * 2) for role, weight in weights.items()}
    order: list[str] = []
    while any(counts.values()):
        for role in weights:
            if counts[role]:
                order.append(role)
                counts[role] -= 1
    return order


def role_and_account(number: int, order: list[str]) -> tuple[str, int]:
    """User ``number`` (from 0): its role, and which of that role's accounts it logs in as."""
    role = order[number % len(order)]
    before = sum(1 for n in range(number) if order[n % len(order)] == role)
    return role, before


def role_counts(users: int, order: list[str]) -> dict[str, int]:
    """How many of ``users`` users have each role."""
    return {role: sum(1 for n in range(users) if order[n % len(order)] == role)
            for role in dict.fromkeys(order)}
