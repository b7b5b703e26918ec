"""How big each scenario runs: the full benchmark, `--quick`, and the smoke tests.

Full sizes are the issue's (>= 100 propagation changes, 1,000 and 5,000 proxies, 10,000
services); they keep a whole run under about 15 minutes on 2 cores. Quick keeps every target's
size where it is cheap enough and shortens the repetitions. Smoke only proves the harness runs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "SMOKE", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    name: str
    propagation_changes: int  # route flips per transport (SotW, delta)
    peer_changes: int  # flips measured on the peer (each costs about a second)
    fanout_levels: tuple[int, ...]  # connected proxies at which a change is timed
    fanout_repeats: int  # changes timed per level
    fanout_step: int  # streams opened per ramp step
    load_workers: int  # processes holding simulated proxies
    cold_clusters: int  # clusters served to a newly connected proxy
    cold_repeats: int
    rebuild_services: tuple[int, ...]
    rebuild_repeats: int  # one-endpoint changes timed per size
    codec_clusters: int
    codec_routes: int
    codec_repeats: int
    scale_services: int  # the mesh the scale scenario's rows run on
    scale_seconds: float  # how long each row's reads are timed under load
    scale_writes: int  # route flips timed per pass of the scale scenario's writes row
    replica_changes: int  # route flips through one replica timed at an Envoy on the other
    replica_proxies: int  # simulated proxies a change reaches, over two replicas then one
    failover_proxies: int  # simulated proxies of a replica that is killed


FULL = Sizes(
    name="full",
    propagation_changes=100,
    peer_changes=40,
    fanout_levels=(250, 1000, 2000, 3500, 5000),
    fanout_repeats=5,
    fanout_step=500,
    load_workers=2,
    cold_clusters=1000,
    cold_repeats=20,
    rebuild_services=(100, 1000, 10000),
    rebuild_repeats=5,
    codec_clusters=1000,
    codec_routes=1000,
    codec_repeats=5,
    scale_services=10000,
    scale_seconds=20.0,
    scale_writes=100,
    replica_changes=100,
    replica_proxies=10000,
    failover_proxies=1000,
)

QUICK = Sizes(
    name="quick",
    propagation_changes=30,
    peer_changes=8,
    fanout_levels=(250, 1000),
    fanout_repeats=3,
    fanout_step=500,
    load_workers=2,
    cold_clusters=1000,
    cold_repeats=5,
    rebuild_services=(100, 1000),
    rebuild_repeats=3,
    codec_clusters=200,
    codec_routes=200,
    codec_repeats=3,
    scale_services=10000,
    scale_seconds=8.0,
    scale_writes=30,
    replica_changes=30,
    replica_proxies=2000,
    failover_proxies=1000,
)

SMOKE = Sizes(
    name="smoke",
    propagation_changes=3,
    peer_changes=1,
    fanout_levels=(5, 10),
    fanout_repeats=1,
    fanout_step=10,
    load_workers=1,
    cold_clusters=20,
    cold_repeats=2,
    rebuild_services=(10, 20),
    rebuild_repeats=2,
    codec_clusters=5,
    codec_routes=5,
    codec_repeats=1,
    scale_services=20,
    scale_seconds=1.0,
    scale_writes=5,
    replica_changes=3,
    replica_proxies=10,
    failover_proxies=5,
)
