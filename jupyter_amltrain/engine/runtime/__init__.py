"""The job runtime: code that runs *inside* a training job.

This package is mounted read-only into job containers whose Python may be as old as 3.6 and has nothing
installed, so every module here imports only the standard library and other ``runtime`` modules, and stays
valid Python 3.6 (``tests/unit/test_runtime_purity.py`` enforces both).

* ``values``  - v1 rules for metric names and values (shared with the host side).
* ``events``  - ``EventWriter``: appends tracking events to ``tracking/events.jsonl``.
* ``context`` - ``JobContext`` (in a job) and ``OfflineContext`` (outside one) behind ``Run.get_context()``.
* ``launch``  - the process launcher for local-process runs (``python -m ...runtime.launch``).
"""
