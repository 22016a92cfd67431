"""Benchmarks and the fault drill: each ``python -m loadtests.<name>`` brings its own stack.

- ``floor``: server CPU per request against a bare Django view, the middleware bill, the claim
  spike, the crowd's connections (``--crowd-only``)
- ``run``: the opening minute under Locust (``make loadtest``)
- ``queue_bench``: the claim queue's delays and drain rate, and its volume
- ``ws_bench``: open queue websockets on one ws process
- ``door_bench``: the door's scans online and offline (Chromium), its list and its sync
- ``faults``: a ticket war under a seeded schedule of faults, then the invariants
- ``tables``: the tables of the recorded runs (``docs/benchmarks/*.json``) for docs/BENCHMARKS.md

The stack is ``tools.stack.Stack`` (the Procfile's processes on private servers, as the tests start
them); Locust (``locustfile.py``) is the one load generator; ``harness`` holds the rest they share
and says how a new benchmark records its figures.
"""
