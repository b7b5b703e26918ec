"""The identity values the CA publishes; they live in the model (translation reads them too)."""

from __future__ import annotations

from meshplane.model import IdentityState, Leaf

__all__ = ["IdentityState", "Leaf"]
