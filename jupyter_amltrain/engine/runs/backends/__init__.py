"""Execution backends. Each starts a run's command, follows it, stops it, and reports how it ended."""
