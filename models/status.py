"""OPC UA StatusCodes: the one status vocabulary of parklink, for every protocol.

Modbus and other connectors map their faults onto these codes so that quality and reasons read the
same whatever the source. Values from OPC 10000-6 Annex A (StatusCode.csv).
"""

from __future__ import annotations

GOOD = 0x00000000
UNCERTAIN = 0x40000000
UNCERTAIN_LAST_USABLE_VALUE = 0x40900000
BAD = 0x80000000
BAD_UNEXPECTED_ERROR = 0x80010000
BAD_INTERNAL_ERROR = 0x80020000
BAD_COMMUNICATION_ERROR = 0x80050000
BAD_DECODING_ERROR = 0x80070000
BAD_TIMEOUT = 0x800A0000
BAD_NODE_ID_UNKNOWN = 0x80340000
BAD_NO_COMMUNICATION = 0x80310000
BAD_WAITING_FOR_INITIAL_DATA = 0x80320000
BAD_NOT_READABLE = 0x803A0000
BAD_NOT_WRITABLE = 0x803B0000
BAD_OUT_OF_RANGE = 0x803C0000
BAD_NOT_SUPPORTED = 0x803D0000
BAD_NOT_FOUND = 0x803E0000
BAD_TYPE_MISMATCH = 0x80740000
BAD_DEVICE_FAILURE = 0x808B0000
BAD_OUT_OF_SERVICE = 0x808D0000
BAD_RESOURCE_UNAVAILABLE = 0x80040000
BAD_DATA_TYPE_ID_UNKNOWN = 0x80110000

NAMES: dict[int, str] = {
    GOOD: "Good",
    UNCERTAIN: "Uncertain",
    UNCERTAIN_LAST_USABLE_VALUE: "UncertainLastUsableValue",
    BAD: "Bad",
    BAD_UNEXPECTED_ERROR: "BadUnexpectedError",
    BAD_INTERNAL_ERROR: "BadInternalError",
    BAD_COMMUNICATION_ERROR: "BadCommunicationError",
    BAD_DECODING_ERROR: "BadDecodingError",
    BAD_TIMEOUT: "BadTimeout",
    BAD_NODE_ID_UNKNOWN: "BadNodeIdUnknown",
    BAD_NO_COMMUNICATION: "BadNoCommunication",
    BAD_WAITING_FOR_INITIAL_DATA: "BadWaitingForInitialData",
    BAD_NOT_READABLE: "BadNotReadable",
    BAD_NOT_WRITABLE: "BadNotWritable",
    BAD_OUT_OF_RANGE: "BadOutOfRange",
    BAD_NOT_SUPPORTED: "BadNotSupported",
    BAD_NOT_FOUND: "BadNotFound",
    BAD_TYPE_MISMATCH: "BadTypeMismatch",
    BAD_DEVICE_FAILURE: "BadDeviceFailure",
    BAD_OUT_OF_SERVICE: "BadOutOfService",
    BAD_RESOURCE_UNAVAILABLE: "BadResourceUnavailable",
    BAD_DATA_TYPE_ID_UNKNOWN: "BadDataTypeIdUnknown",
}


# Quality by the two severity bits (30-31) of a status code: 00 Good, 01 Uncertain, 10 and 11 Bad.
QUALITY_BY_SEVERITY = (2, 1, 0, 0)


def quality_of(status: int) -> int:
    """0 = Bad, 1 = Uncertain, 2 = Good, from the two severity bits (30-31); `11` counts as Bad."""
    return QUALITY_BY_SEVERITY[(status >> 30) & 0b11]


def name_of(status: int) -> str:
    """A readable name for a status code, falling back to its hex form."""
    return NAMES.get(status & 0xFFFF0000, f"0x{status:08X}")
