"""The demo: the mesh of the README's first command, as local processes or in docker compose."""

from meshplane.demo.compose import render_compose, render_prometheus
from meshplane.demo.run import DemoOptions, run_demo
from meshplane.demo.topology import config_dir, fetch_bootstraps

__all__ = [
    "DemoOptions",
    "config_dir",
    "fetch_bootstraps",
    "render_compose",
    "render_prometheus",
    "run_demo",
]
