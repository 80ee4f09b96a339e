"""Device units → Prometheus base units (https://prometheus.io/docs/practices/naming/#base-units)."""

from __future__ import annotations

import re

# unit as configured → (metric name suffix, factor to multiply the device value by)
_BASE_UNITS: dict[str, tuple[str, float]] = {
    "": ("", 1.0),
    "1": ("", 1.0),
    "pcs": ("", 1.0),
    "parts": ("", 1.0),
    "count": ("", 1.0),
    "s": ("seconds", 1.0),
    "ms": ("seconds", 1e-3),
    "min": ("seconds", 60.0),
    "h": ("seconds", 3600.0),
    "J": ("joules", 1.0),
    "kJ": ("joules", 1e3),
    "Wh": ("joules", 3600.0),
    "kWh": ("joules", 3.6e6),
    "MWh": ("joules", 3.6e9),
    "W": ("watts", 1.0),
    "kW": ("watts", 1e3),
    "V": ("volts", 1.0),
    "A": ("amperes", 1.0),
    "°C": ("celsius", 1.0),
    "degC": ("celsius", 1.0),
    "K": ("kelvin", 1.0),
    "Pa": ("pascals", 1.0),
    "kPa": ("pascals", 1e3),
    "bar": ("pascals", 1e5),
    "mbar": ("pascals", 100.0),
    "m": ("meters", 1.0),
    "mm": ("meters", 1e-3),
    "g": ("grams", 1.0),
    "kg": ("grams", 1e3),
    "t": ("grams", 1e6),
    "%": ("ratio", 0.01),
    "Hz": ("hertz", 1.0),
    "rpm": ("rpm", 1.0),  # no SI base unit for rotational speed that operators read
    "m3": ("cubic_meters", 1.0),
    "l": ("liters", 1.0),
}


def to_base_unit(unit: str) -> tuple[str, float]:
    """Suffix and factor for a configured unit; unknown units pass through, sanitised, factor 1."""
    known = _BASE_UNITS.get(unit)
    if known is not None:
        return known
    return re.sub(r"[^a-zA-Z0-9_]+", "_", unit).strip("_").lower(), 1.0
