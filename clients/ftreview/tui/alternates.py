"""What the model says without memories (the alternate), as the review screen asks for it.

Plain Python. `w` turns the alternate on for the whole queue, not for one row: it stays on
while the cursor moves, and the alternates of the row under the cursor and of the next
`AHEAD` rows are generated ahead (once each), so moving down shows them without a wait.
The invariants: a reply is generated at most once at a time; a reply whose generation
failed is not asked again until the reviewer turns `w` off and on (the pane says so); a
reply that already has an alternate is never asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ftreview.tui.rows import Row

AHEAD = 2
"""Beside the row under the cursor, this many rows below it are generated ahead."""


@dataclass
class Alternates:
    on: bool = False
    generating: set[int] = field(default_factory=set)
    errors: dict[int, str] = field(default_factory=dict)

    def toggle(self, current: int | None) -> bool:
        """Turn the alternate on or off; turning it on asks again for the current row."""
        self.on = not self.on
        if self.on and current is not None:
            self.errors.pop(current, None)
        return self.on

    def wanted(self, rows: Sequence[Row], index: int | None) -> list[int]:
        """The replies to generate now (the row under the cursor first), marked as
        generating; none while the alternate is off."""
        if not self.on or index is None:
            return []
        wanted = []
        for row in rows[index : index + 1 + AHEAD]:
            lead = row.lead
            ts = lead.timestamp_ns
            if lead.alternate or ts in self.generating or ts in self.errors:
                continue
            wanted.append(ts)
        self.generating.update(wanted)
        return wanted
