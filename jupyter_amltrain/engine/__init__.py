"""The domain core: workspace store, environments and images, snapshots, compute, runs, tracking.

Nothing here imports Jupyter. The faces (``jupyter_amltrain.core`` for the v1 API, magics, widgets, the
server extension, the CLI) call into this package; it calls Docker, SQLite and the file system.
"""
