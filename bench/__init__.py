"""Benchmarks: parklink against the bare libraries it is built on, in the same run."""
