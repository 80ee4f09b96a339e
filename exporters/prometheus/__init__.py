"""Prometheus exposition of signals, assets and connection health."""
