"""Connectors speak one protocol each and turn device values into batches of Samples."""
