"""Sparkplug B 3.0: payloads on the official protobuf definition, and the edge node session."""
