"""Replay: recorded samples (CSV) played as a device, for replays, backfills and deterministic tests."""
