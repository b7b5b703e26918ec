"""The demo: the mesh of the README's first command, as local processes or in docker compose."""

from meshplane.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
