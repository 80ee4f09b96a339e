"""What went wrong with one request, and what it spoils.

Three sizes of fault, from the smallest:
- the answer is there but unusable (a Modbus exception, a malformed or mismatched response): only
  that request's signals go Bad, the link and the unit stay up;
- no answer from a unit within the timeout: that unit's signals go Bad and it rests (see
  `connector`), the other units on the link go on;
- the link itself is gone (refused, closed, serial port vanished), or no unit answers at all: every
  signal of the connection goes Bad and the connector reconnects with backoff.

Pure functions over pymodbus' exceptions and response objects; no I/O.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from connectors.modbus.binding import BIT_TABLES
from connectors.modbus.planner import Request
from models.status import (
    BAD_DECODING_ERROR,
    BAD_DEVICE_FAILURE,
    BAD_NO_COMMUNICATION,
    BAD_NOT_FOUND,
    BAD_NOT_SUPPORTED,
    BAD_OUT_OF_RANGE,
    BAD_RESOURCE_UNAVAILABLE,
)

# Modbus exception codes (Modbus Application Protocol V1.1b3 §7) → OPC UA status codes.
EXCEPTION_STATUS: dict[int, int] = {
    1: BAD_NOT_SUPPORTED,  # illegal function
    2: BAD_NOT_FOUND,  # illegal data address: the register does not exist
    3: BAD_OUT_OF_RANGE,  # illegal data value
    4: BAD_DEVICE_FAILURE,  # server device failure
    5: BAD_RESOURCE_UNAVAILABLE,  # acknowledge: busy with a long command
    6: BAD_RESOURCE_UNAVAILABLE,  # server device busy
    8: BAD_DEVICE_FAILURE,  # memory parity error
    10: BAD_NO_COMMUNICATION,  # gateway path unavailable
    11: BAD_NO_COMMUNICATION,  # gateway target device failed to respond
}
EXCEPTION_NAMES: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

Failure = Literal["timeout", "link", "protocol"]


def quiet_pymodbus() -> None:
    """pymodbus logs every failure at ERROR with frame dumps; we report through LinkHealth instead."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def status_of_exception(code: int) -> int:
    """The OPC UA status for a Modbus exception code."""
    return EXCEPTION_STATUS.get(code, BAD_DEVICE_FAILURE)


def describe_exception(code: int) -> str:
    """'exception 2 (illegal data address)'."""
    name = EXCEPTION_NAMES.get(code)
    return f"exception {code} ({name})" if name else f"exception {code}"


def classify(exc: BaseException, connected: bool) -> Failure | None:
    """How big a failed request's fault is; None for an exception that is not a Modbus failure (a bug).

    pymodbus raises ModbusIOException("No response received ...") for a timeout, and also when a
    frame cannot be decoded at all (then it drops the connection, so `connected` is False).
    """
    if isinstance(exc, ConnectionException | OSError) or not connected:
        return "link"
    if isinstance(exc, TimeoutError) or (isinstance(exc, ModbusIOException) and "No response" in str(exc)):
        return "timeout"
    if isinstance(exc, ModbusException):
        return "protocol"
    return None


def check_response(req: Request, response: Any) -> tuple[int, str] | None:
    """(status, reason) if the response must not be decoded for this request; None if it is sound.

    A response is decoded only if it is the right function's answer with exactly the values asked
    for: a wrong function code (pymodbus accepts any), a byte count that disagrees with the frame,
    or too few or too many values would otherwise become wrong values.
    """
    fc, asked = response.function_code, req.function_code
    if fc == asked:
        malformed = getattr(response, "malformed", "")
        if malformed:
            return BAD_DECODING_ERROR, f"malformed response: {malformed}"
        if req.table in BIT_TABLES:
            got, expected = len(response.bits), 8 * ((req.count + 7) // 8)  # bits arrive as whole bytes
        else:
            got, expected = len(response.registers), req.count
        if got != expected:
            return BAD_DECODING_ERROR, f"{got} values in the answer, {expected} expected"
        return None
    if response.isError():
        code = int(response.exception_code)
        if fc != asked | 0x80:
            return BAD_DECODING_ERROR, f"{describe_exception(code)} for function {fc & 0x7F}, asked {asked}"
        return status_of_exception(code), describe_exception(code)
    return BAD_DECODING_ERROR, f"answer of function {fc} to a request of function {asked}"


def reason_of(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed request, for LinkHealth.last_error and the log."""
    if classify(exc, True) == "timeout":
        return f"no response within {timeout:g} s"
    text = getattr(exc, "string", "") or str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
