"""The local demo: a control plane, a gateway Envoy and two versions of an app, as processes."""

from meshplane.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
