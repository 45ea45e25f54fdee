"""Runs: records and their lifecycle, the detached supervisor, and the Docker and local-process backends."""
