"""A Sparkplug edge node in a process of its own, for the test that kills it (NDEATH as MQTT will).

Usage: python -m tests.exporters.mqtt.edge_child <port> <group_id> <client_id>
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from exporters.mqtt.sparkplug.edge import SparkplugEdgeNode
from tests.exporters.mqtt.conftest import make_park, settings_for


async def main(port: int, group_id: str, client_id: str) -> None:
    """Run the node until killed."""
    settings = settings_for(
        port, Path(tempfile.gettempdir()), client_id=client_id, sparkplug={"group_id": group_id}
    )
    await SparkplugEdgeNode(settings, make_park()).run()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
