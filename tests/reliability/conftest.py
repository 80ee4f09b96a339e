"""The fault campaign's `record` fixture and its report live in tests/conftest.py (the edge/hub
fault tests record rows too); `pytest tests/reliability tests/orchestrator/hub` runs the campaign."""
