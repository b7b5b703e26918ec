"""Route matches: a meshplane `RouteMatch` as an Envoy `RouteMatch`.

The semantics users get are Envoy's: `prefix` compares the start of the path, case-sensitively;
`path` the whole path without its query; `regex` the whole path without its query, in full (RE2);
header and query regexes match the whole value. Methods become one `:method` header condition.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from meshplane.model import HeaderMatch, QueryMatch, RouteMatch

__all__ = ["envoy_match", "regex_matcher"]


def envoy_match(match: RouteMatch) -> route_components_pb2.RouteMatch:
    """Translate every condition of `match`; all of them must hold in Envoy too."""
    result = route_components_pb2.RouteMatch()
    if match.path is not None:
        result.path = match.path
    elif match.regex is not None:
        result.safe_regex.CopyFrom(regex_matcher(match.regex))
    else:
        result.prefix = match.prefix or "/"
    result.headers.extend(_header_matcher(header) for header in match.headers)
    if match.methods:
        methods = "|".join(sorted(set(match.methods)))
        result.headers.add(
            name=":method",
            string_match=string_pb2.StringMatcher(safe_regex=regex_matcher(f"^({methods})$")),
        )
    result.query_parameters.extend(_query_matcher(query) for query in match.query)
    return result


def regex_matcher(pattern: str) -> regex_pb2.RegexMatcher:
    return regex_pb2.RegexMatcher(regex=pattern)


def _header_matcher(header: HeaderMatch) -> route_components_pb2.HeaderMatcher:
    matcher = route_components_pb2.HeaderMatcher(name=header.name)
    # present_match false matches requests where the header is absent.
    _match_value(matcher, header.exact, header.regex, present=bool(header.present))
    return matcher


def _query_matcher(query: QueryMatch) -> route_components_pb2.QueryParameterMatcher:
    matcher = route_components_pb2.QueryParameterMatcher(name=query.name)
    _match_value(matcher, query.exact, query.regex, present=True)
    return matcher


def _match_value(
    matcher: route_components_pb2.HeaderMatcher | route_components_pb2.QueryParameterMatcher,
    exact: str | None,
    regex: str | None,
    *,
    present: bool,
) -> None:
    """Match a header's or query parameter's value: exactly, by regex, or by presence alone."""
    if exact is not None:
        matcher.string_match.exact = exact
    elif regex is not None:
        matcher.string_match.safe_regex.CopyFrom(regex_matcher(regex))
    else:
        matcher.present_match = present
