"""Route explain: which route a request takes at a proxy, why the others do not, and where it
goes with which policies. Pure: reads a Mesh, does no I/O."""

from meshplane.explain.explain import UnknownProxy, explain
from meshplane.explain.models import ExplainRequest, Explanation

__all__ = ["ExplainRequest", "Explanation", "UnknownProxy", "explain"]
