"""Exporters read the snapshot and published KPIs, never devices."""
