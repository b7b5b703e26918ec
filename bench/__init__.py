"""meshplane's benchmark harness: `python -m bench` (or `make bench`) measures every target of the
performance design on this machine and writes bench/results/{latest.json,report.md,*.png}.

Each scenario lives in bench/scenarios/ and returns a ScenarioResult; the control plane under test
runs in its own process so its CPU and memory figures are its own; peers (sovereign, and
envoy-data-plane for the codec comparison) are installed into bench/.venvs/ on first use, because
their dependency pins differ from ours.
"""
