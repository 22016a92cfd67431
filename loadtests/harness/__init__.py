"""What the benchmarks and drills share (each script is a thin ``python -m loadtests...`` module).

- ``stack``: ``Stack``, the private PostgreSQL, Redis and Procfile processes of one run; ``running()``
- ``fixtures``: bulk students, logged-in sessions, events; ``Student`` over HTTP and websocket
- ``invariants``: the database truth after a run (tickets, queue outcomes, decision times)
- ``http``: the raw keep-alive HTTP client (``measure``, ``spike``)
- ``report``: percentile, markdown tables, docs/BENCHMARKS.md sections, the shared options and ``main``
- ``alerts``, ``load``: the drills' webhook receiver, load-client runs, health samples, windows
- ``locust_report``: the Locust run's figures and markdown
"""
