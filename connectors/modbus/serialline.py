"""A virtual null-modem cable: two pseudo-terminals whose bytes are copied across, in-process.

pyserial (and so pymodbus) opens a pty's slave end like any serial port, but a single pty has only
one slave: the master is a file descriptor, not a path. So the line is two pty pairs; the event
loop copies what is written to one slave out of the other slave. The simulator serves RTU on
`device_port`, the connector opens `client_port` (optionally a symlink at a chosen path, so a
config's `serial_port: /tmp/ttyPLC` works in the demo). Linux and macOS only; no baud-rate timing.

`connected = False` unplugs the cable: bytes are dropped in both directions until it is set back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path


class VirtualSerialLine:
    """Two bridged ptys; `await open()` before use, `close()` after."""

    def __init__(self, link: str | None = None) -> None:
        self.link = link
        self.connected = True
        self.bytes_copied = 0
        self._fds: list[int] = []
        self._masters: tuple[int, int] | None = None
        self._paths: tuple[str, str] = ("", "")

    @property
    def device_port(self) -> str:
        """The end the device (simulator) opens."""
        return self._paths[0]

    @property
    def client_port(self) -> str:
        """The end the client opens: the symlink if one was asked for, else the pty's path."""
        return self.link or self._paths[1]

    async def open(self) -> None:
        """Create both ptys, start copying, and create the symlink if asked."""
        loop = asyncio.get_running_loop()
        ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line editing: bytes pass unchanged
            os.set_blocking(master, False)
            self._fds += [master, slave]  # the slave stays open here so the master never reads EIO
            ends.append((master, os.ttyname(slave)))
        (master_a, path_a), (master_b, path_b) = ends
        self._masters, self._paths = (master_a, master_b), (path_a, path_b)
        loop.add_reader(master_a, self._copy, master_a, master_b)
        loop.add_reader(master_b, self._copy, master_b, master_a)
        if self.link:
            self._make_link(self.link, path_b)

    def _make_link(self, path: str, target: str) -> None:
        link = Path(path)
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            self.close()
            raise FileExistsError(f"{path} exists and is not a symlink; not replacing it")
        link.symlink_to(target)

    def _copy(self, source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except OSError:
            return
        if data and self.connected:
            with contextlib.suppress(BlockingIOError):  # nobody reading and the buffer full: dropped
                os.write(target, data)
                self.bytes_copied += len(data)

    def close(self) -> None:
        """Stop copying, close every descriptor, remove our symlink."""
        if self._masters is not None:
            loop = asyncio.get_running_loop()
            for master in self._masters:
                loop.remove_reader(master)
            self._masters = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        if self.link and Path(self.link).is_symlink() and os.readlink(self.link) == self._paths[1]:
            Path(self.link).unlink()
