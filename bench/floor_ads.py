"""The floor of a cold connect: a bare grpc.aio ADS server replaying a control plane's answers.

`python -m bench.floor_ads FILE` serves StreamAggregatedResources on a free loopback port
(printed on stdout) with meshplane's server options. It parses each request (as any ADS server
must) and answers the first request of each type with the response bytes recorded from
meshplane for the same proxy (FILE, see `record_responses`); later requests of a type are ACKs
and get nothing. No state machine, no snapshot, no logging, no metrics: what is left is what
any Python control plane on grpc.aio pays to serve the same bytes over the same exchanges, so
the cold-connect scenario can say how much of its figure is meshplane's own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import procstats
from bench.processes import stop_process

__all__ = ["FloorAds"]

_START_TIMEOUT = 30.0


class FloorAds:
    """The floor server in its own process; `pid`, `xds_port` and `cpu_seconds()` as for
    ControlPlaneProcess. Stopped by its pid on exit."""

    def __init__(self, workdir: Path, responses: Mapping[str, bytes]) -> None:
        self._file = workdir / "floor-responses.json"
        self._file.write_text(
            json.dumps({t: base64.b64encode(r).decode() for t, r in responses.items()})
        )
        self._process: subprocess.Popen[bytes] | None = None
        self.xds_port = 0

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the floor server is not running")
        return self._process.pid

    def cpu_seconds(self) -> float:
        return procstats.cpu_seconds(self.pid)

    def __enter__(self) -> FloorAds:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.floor_ads", str(self._file)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # the port, once it listens
        if not line.strip().isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError(f"the floor server did not start: {line!r}")
        self.xds_port = int(line)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        stop_process(process, 10)
        if process is not None and process.stdout is not None:
            process.stdout.close()


async def _serve(responses: Mapping[str, bytes]) -> None:
    import grpc
    from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest

    from meshplane.xds import ADS_SERVICE, SERVER_OPTIONS

    async def ads(requests: AsyncIterator[Any], context: Any) -> None:
        answered: set[str] = set()
        async for request in requests:
            if request.type_url not in answered and request.type_url in responses:
                answered.add(request.type_url)
                await context.write(responses[request.type_url])

    server = grpc.aio.server(options=SERVER_OPTIONS)  # meshplane's own
    handler = grpc.stream_stream_rpc_method_handler(
        ads, request_deserializer=DiscoveryRequest.FromString
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ADS_SERVICE, {"StreamAggregatedResources": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


def main() -> None:
    from meshplane.gc_tuning import tune_for_a_server

    recorded = json.loads(Path(sys.argv[1]).read_text())
    responses = {t: base64.b64decode(r) for t, r in recorded.items()}
    tune_for_a_server()  # as `meshplane serve` does
    asyncio.run(_serve(responses))


if __name__ == "__main__":
    main()
