"""Benchmarks: our speed side by side with baselines measured in the same run, as ratios (see BENCHMARKS.md)."""
