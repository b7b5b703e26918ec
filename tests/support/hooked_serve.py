"""`meshplane serve` with a test's translate hook, for tests that must kill the process:

    python -m tests.support.hooked_serve MODULE:NAME serve --database-url ...

runs the CLI with every ControlPlane built with the hook MODULE.NAME."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from meshplane import serve
from meshplane.cli import main


def _install(where: str) -> None:
    module, _, name = where.partition(":")
    hook = getattr(importlib.import_module(module), name)
    build = serve.ControlPlane.__init__

    def with_hook(self: serve.ControlPlane, settings: Any, **_: Any) -> None:
        build(self, settings, hook=hook)

    serve.ControlPlane.__init__ = with_hook  # type: ignore[method-assign]


if __name__ == "__main__":
    _install(sys.argv.pop(1))
    main()
