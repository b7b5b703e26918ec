"""RDS: virtual hosts per host, route precedence, matches and actions."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2
from google.protobuf import json_format

from meshplane.xds.type_urls import ROUTE
from tests.support.meshes import gateway, gateway_group, mesh, route, service, sidecar_group
from tests.unit.translate.meshes import EXAMPLES, grouped


def route_configs(example: str, group_index: int = 0):
    case = EXAMPLES[example]
    return grouped(case.mesh, case.groups[group_index])[ROUTE]


def vhosts(config) -> dict[str, route_components_pb2.VirtualHost]:
    return {vhost.name: vhost for vhost in config.virtual_hosts}


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_route_precedence_exact_regex_prefixes_then_conditions_then_name():
    (config,) = route_configs("matches")
    assert config.name == "gateway:edge"
    (vhost,) = config.virtual_hosts
    assert (vhost.name, list(vhost.domains)) == ("*", ["*"])
    # headers (3 conditions) before posts (1) before short (0), all prefix "/a".
    names = [r.name for r in vhost.routes]
    assert names == ["exact", "regex", "long", "headers", "posts", "short", "root"]


def test_matches_translate_path_headers_and_methods():
    (config,) = route_configs("matches")
    routes = {r.name: as_dict(r.match) for r in config.virtual_hosts[0].routes}
    assert routes["exact"] == {"path": "/healthz"}
    assert routes["regex"] == {"safe_regex": {"regex": "^/users/[0-9]+$"}}
    assert routes["root"] == {"prefix": "/"}
    assert routes["posts"] == {
        "prefix": "/a",
        "headers": [{"name": ":method", "string_match": {"safe_regex": {"regex": "^(GET|POST)$"}}}],
    }
    assert routes["headers"]["headers"] == [
        {"name": "x-tenant", "string_match": {"exact": "blue"}},
        {"name": "x-trace", "string_match": {"safe_regex": {"regex": "^[a-f0-9]{8}$"}}},
        {"name": "x-debug", "present_match": False},
    ]


def test_present_false_is_an_explicit_absence_match():
    (config,) = route_configs("matches")
    headers = next(r for r in config.virtual_hosts[0].routes if r.name == "headers")
    absent = headers.match.headers[2]
    assert absent.WhichOneof("header_match_specifier") == "present_match"
    assert absent.present_match is False


def test_weighted_split_between_subsets_with_timeout():
    (config,) = route_configs("weighted")
    (split,) = config.virtual_hosts[0].routes
    assert split.name == "split"
    assert as_dict(split.route) == {
        "weighted_clusters": {
            "clusters": [
                {"name": "reviews|version=v1", "weight": 90},
                {"name": "reviews|version=v2", "weight": 10},
            ]
        },
        "timeout": "2.500s",
    }


def test_zero_weight_destinations_are_left_out():
    (config,) = route_configs("zero-weight")
    routes = {r.name: r.route for r in config.virtual_hosts[0].routes}
    assert routes["one-left"].cluster == "b"
    assert [(c.name, c.weight.value) for c in routes["two-left"].weighted_clusters.clusters] == [
        ("b", 5),
        ("c", 5),
    ]


def test_destinations_naming_one_cluster_add_up():
    example = mesh(
        service("a"),
        service("b"),
        gateway("edge", 8080),
        route(
            "r",
            gateways=["edge"],
            destinations=[
                {"service": "a", "weight": 1},
                {"service": "b", "weight": 2},
                {"service": "a", "weight": 3},
            ],
        ),
    )
    (config,) = grouped(example, gateway_group("edge"))[ROUTE]
    clusters = config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters
    assert [(c.name, c.weight.value) for c in clusters] == [("a", 4), ("b", 2)]


def test_route_to_a_missing_service_answers_503_itself():
    example = mesh(
        gateway("edge", 8080), route("r", gateways=["edge"], destinations=[{"service": "gone"}])
    )
    (config,) = grouped(example, gateway_group("edge"))[ROUTE]
    (envoy_route,) = config.virtual_hosts[0].routes
    assert envoy_route.WhichOneof("action") == "direct_response"
    assert envoy_route.direct_response.status == 503


def test_gateway_hosts_one_virtual_host_each_without_duplicates():
    (config,) = route_configs("gateway-hosts", 0)  # public: a.example.com, b.example.com
    assert config.name == "gateway:public"
    found = vhosts(config)
    assert list(found) == ["*.example.org", "a.example.com", "b.example.com", "c.example.com"]
    for name, vhost in found.items():
        assert list(vhost.domains) == [name]
    assert [r.name for r in found["a.example.com"].routes] == ["only-a", "everywhere"]
    assert [r.name for r in found["b.example.com"].routes] == ["everywhere"]
    assert [r.name for r in found["c.example.com"].routes] == ["elsewhere"]
    assert [r.name for r in found["*.example.org"].routes] == ["elsewhere"]


def test_gateway_routes_stay_on_their_gateways():
    (internal,) = route_configs("gateway-hosts", 1)
    assert internal.name == "gateway:internal"
    assert [(v.name, [r.name for r in v.routes]) for v in internal.virtual_hosts] == [
        ("*", ["everywhere"])
    ]


def test_missing_gateway_gets_no_route_configuration():
    assert route_configs("gateway-hosts", 2) == []


def test_outbound_virtual_host_per_http_service_ending_in_a_default_route():
    (config,) = route_configs("sidecar")
    assert config.name == "outbound"
    found = vhosts(config)
    # db is tcp: no virtual host; legacy.internal is a host a sidecar route names.
    assert list(found) == ["legacy.internal", "ratings", "reviews"]
    assert [r.name for r in found["ratings"].routes] == ["ratings-slow", "default:ratings"]
    default = found["ratings"].routes[-1]
    assert as_dict(default.match) == {"prefix": "/"}
    assert default.route.cluster == "ratings"
    assert not default.route.HasField("timeout")
    assert found["ratings"].routes[0].route.timeout.ToMilliseconds() == 250
    assert [r.name for r in found["reviews"].routes] == ["default:reviews"]
    assert [r.name for r in found["legacy.internal"].routes] == ["legacy"]
    assert found["legacy.internal"].routes[0].route.cluster == "reviews"


def test_outbound_routes_are_the_same_for_every_sidecar():
    first, second = (route_configs("sidecar", i)[0] for i in (0, 1))
    assert first == second


def test_sidecar_route_in_gateway_mesh_does_not_reach_gateways():
    (public,) = route_configs("gateway-hosts", 0)
    names = {r.name for v in public.virtual_hosts for r in v.routes}
    assert "sidecar-only" not in names
    example = EXAMPLES["gateway-hosts"].mesh
    (outbound,) = grouped(example, sidecar_group("web"))[ROUTE]
    assert [r.name for r in vhosts(outbound)["web"].routes] == ["sidecar-only", "default:web"]


def test_a_route_memo_translates_again_only_what_changed() -> None:
    from meshplane.xds.translate import RouteMemo
    from meshplane.xds.translate.route_configs import gateway_route_configuration

    items = [gateway("edge", 10000), service("a"), service("b")]
    routes = [route(f"r{i}", gateways=["edge"], match={"prefix": f"/{i}"},
                    destinations=[{"service": "a"}]) for i in range(3)]  # fmt: skip
    memo = RouteMemo()
    first = mesh(*items, *routes)
    before = gateway_route_configuration(first, "edge", memo)
    kept = {name: memo.route(name, first.routes[name], first) for name in ("r0", "r1", "r2")}

    changed = route(
        "r1", gateways=["edge"], match={"prefix": "/1"}, destinations=[{"service": "b"}]
    )
    second = mesh(*items, routes[0], changed, routes[2])
    memo.advance()
    after = gateway_route_configuration(second, "edge", memo)
    assert memo.route("r0", second.routes["r0"], second) is kept["r0"]  # same spec: reused
    assert memo.route("r1", second.routes["r1"], second) is not kept["r1"]
    assert after != before
    assert after == gateway_route_configuration(second, "edge")  # the same as without a memo

    without_b = mesh(*[i for i in items if i[1] != "b"], routes[0], changed, routes[2])
    assert memo.route("r1", without_b.routes["r1"], without_b).direct_response.status == 503


def test_assembled_configurations_equal_the_messages_built_route_by_route() -> None:
    from envoy.config.route.v3 import route_pb2

    from meshplane.model import gateway_table, sidecar_table
    from meshplane.xds.references import referenced_clusters
    from meshplane.xds.translate import RouteMemo
    from meshplane.xds.translate.route_configs import (
        envoy_route,
        gateway_route_configuration,
        outbound_route_configuration,
    )

    example = mesh(
        gateway("edge", 10000, hosts=["a.example", "b.example"]),
        service("a"),
        service("b"),
        route("r1", gateways=["edge"], match={"prefix": "/one"}, destinations=[{"service": "a"}]),
        route("r2", gateways=["edge"], hosts=["b.example"], match={"path": "/two"},
              destinations=[{"service": "a", "weight": 1}, {"service": "b", "weight": 3}]),
        route("s1", hosts=["a"], match={"prefix": "/x"}, destinations=[{"service": "b"}]),
    )  # fmt: skip
    memo = RouteMemo()
    built = gateway_route_configuration(example, "edge", memo)
    table = gateway_table(example, "edge")
    assert built is not None
    assert table is not None
    expected = route_pb2.RouteConfiguration(name=built.name)
    for host in sorted(table):
        vhost = expected.virtual_hosts.add(name=host, domains=[host])
        vhost.routes.extend(envoy_route(name, spec, example) for name, spec in table[host])
    assert built == expected
    assert memo.clusters(built) == referenced_clusters(built) == {"a", "b"}

    outbound = outbound_route_configuration(example, memo)
    assert [v.name for v in outbound.virtual_hosts] == sorted(sidecar_table(example))
    assert [r.name for r in outbound.virtual_hosts[0].routes][-1].startswith("default")
    assert memo.clusters(outbound) == referenced_clusters(outbound)
