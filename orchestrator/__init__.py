"""The runtime: config, model, connectors, routing, scheduling, CLI."""
