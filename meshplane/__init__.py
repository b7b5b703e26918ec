"""meshplane: a service-mesh control plane for Envoy."""
