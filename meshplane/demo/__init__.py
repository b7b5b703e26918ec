"""The demo: the mesh of the README's first command, as local processes or in docker compose."""

from meshplane.demo.compose import render_compose, render_prometheus
from meshplane.demo.run import DemoOptions, run_demo
from meshplane.demo.topology import config_dir, write_configs

__all__ = [
    "DemoOptions",
    "config_dir",
    "render_compose",
    "render_prometheus",
    "run_demo",
    "write_configs",
]
