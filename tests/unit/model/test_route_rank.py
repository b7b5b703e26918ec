"""A route's rank (rules 1 and 2 of the precedence) is kept by its spec, and never outlives it."""

from __future__ import annotations

from meshplane.model import RouteSpec, precedence
from meshplane.model.route_table import rank


def _route(match: dict[str, object]) -> RouteSpec:
    return RouteSpec.model_validate(
        {"gateways": ["edge"], "match": match, "destinations": [{"service": "a"}]}
    )


def test_the_kept_rank_is_the_rule_and_orders_routes() -> None:
    exact, longer, shorter = (
        _route({"path": "/a"}),
        _route({"prefix": "/ab"}),
        _route({"prefix": "/"}),
    )
    assert [r.rank for r in (exact, longer, shorter)] == [rank(r) for r in (exact, longer, shorter)]
    routes = [("z", shorter), ("y", longer), ("x", exact)]
    assert [name for name, _ in sorted(routes, key=precedence)] == ["x", "y", "z"]


def test_a_copy_with_an_update_ranks_afresh() -> None:
    spec = _route({"prefix": "/a"})
    assert spec.rank == (2, -2, 0)
    moved = spec.model_copy(update={"match": spec.match.model_copy(update={"prefix": "/abc"})})
    assert moved.rank == (2, -4, 0)
    assert "rank" not in spec.model_dump()
