"""One signal's latest value, and writes to writable signals (operators and admins).

A write goes to the connector of the signal's connection (`WritableConnector.write`) on the
runtime's event loop and answers with the device's OPC UA status code name. It is refused with 409
when the signal is not configured writable or its connector kind cannot write: the caller has the
right, the signal does not allow it (403 is kept for roles without the right).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Ctx
from exporters.http.convert import signal_out
from exporters.http.schemas import SignalOut, WriteIn, WriteOut
from models.status import BAD_INTERNAL_ERROR, BAD_TIMEOUT, name_of, quality_of

router = APIRouter(tags=["signals"])
log = logging.getLogger("parklink.http")
WRITE_TIMEOUT = 10.0  # connectors time out themselves; this only bounds a stuck one


@router.get("/assets/{path:path}/signals/{name}", response_model=SignalOut)
async def signal(context: Ctx, caller: Caller, path: str, name: str) -> SignalOut:
    """One signal of an asset with its latest value."""
    found = access.signal(context, access.asset(context, caller, path), name)
    return signal_out(found, context.runtime.snapshot.latest[found.index])


@router.post(
    "/assets/{path:path}/signals/{name}/write",
    response_model=WriteOut,
    responses={409: {"description": "the signal is not writable, or its connection cannot write"}},
)
async def write(context: Ctx, caller: Caller, path: str, name: str, body: WriteIn) -> WriteOut:
    """Write a value to a writable signal; answers with the device's status code name."""
    asset = access.asset(context, caller, path, access.WRITERS)
    found = access.signal(context, asset, name)
    link = context.links.get((asset.company, asset.connection))
    bound = next((b for b in link.signals if b.signal == found.index), None) if link else None
    if link is None or bound is None or not bound.writable:
        raise HTTPException(409, "signal is not writable")
    writer = getattr(link.connector, "write", None)
    if writer is None:
        raise HTTPException(409, "connection cannot write")
    try:
        code = int(await asyncio.wait_for(writer(bound, body.value), WRITE_TIMEOUT))
    except TimeoutError:
        code = BAD_TIMEOUT
    except Exception:  # a connector bug must not become a 500 with a traceback for the caller
        log.exception("write to %s failed", found.path)
        code = BAD_INTERNAL_ERROR
    # One audit line per write: who (token id and name), what, and the device's answer.
    log.info(
        "write %s = %r by token %d (%s): %s",
        found.path,
        body.value,
        caller.token_id,
        caller.name,
        name_of(code),
    )
    return WriteOut(signal=found.path, status=name_of(code), code=code, good=quality_of(code) == 2)
