"""The fault campaign's record: one row per fault test, as tried / survived / lost.

- tried: how many times the fault was applied (cases, drops, restarts, files);
- survived: how many of those parklink came through as specified (no crash, the right quality,
  recovery);
- lost: what went missing that the fault does not explain (samples, values, results); 0 expected.

`tests/reliability/conftest.py` writes the rows to `build/campaign.json` at the end of the session
and prints them as a table in the terminal summary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    """One fault test's result."""

    fault: str
    tried: int
    survived: int
    lost: int
    note: str = ""
    test: str = ""  # the pytest node id that produced the row


@dataclass(slots=True)
class Campaign:
    """The rows recorded in this session, in the order the tests ran."""

    rows: list[Row] = field(default_factory=list)

    def record(self, fault: str, tried: int, survived: int, lost: int, note: str = "", test: str = "") -> Row:
        """Add one row and return it."""
        row = Row(fault, tried, survived, lost, note, test)
        self.rows.append(row)
        return row

    def to_json(self) -> str:
        """The rows as a JSON document: `{"rows": [{fault, tried, survived, lost, note, test}, ...]}`."""
        return json.dumps({"rows": [asdict(row) for row in self.rows]}, indent=2, ensure_ascii=False)

    def write(self, path: Path) -> None:
        """Write `to_json()` to `path`, creating its folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    def table(self) -> str:
        """The rows as a plain-text table (fault, tried, survived, lost, note)."""
        header = ("fault", "tried", "survived", "lost", "note")
        cells = [header] + [(r.fault, str(r.tried), str(r.survived), str(r.lost), r.note) for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(4)]
        lines = []
        for n, row in enumerate(cells):
            name = row[0].ljust(widths[0])
            numbers = "  ".join(row[i].rjust(widths[i]) for i in range(1, 4))
            lines.append(f"{name}  {numbers}  {row[4]}".rstrip())
            if n == 0:
                lines.append("-" * len(lines[0]))
        return "\n".join(lines)


CAMPAIGN = Campaign()
"""The session's campaign (one per pytest process)."""
