"""Notices on the activity line: what the screen tells the user once (an action failed, a
batch was scored, the sort changed), in the row that already says what is running.

Textual's toasts are drawn over the bottom right of the screen: on 80x24 that is the
candidate's memories, and three notices in a row stacked over them. Here the latest notice
takes the activity line for a few seconds; a newer one replaces it, and the line goes back
to the running work when it expires.

Invariants: plain state and Rich text, no widget; the screen draws `line(now)` or, when
None, its activity line.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

# (glyph, style) by Textual severity.
LOOK = {
    "information": ("·", "bold"),
    "warning": ("!", "bold yellow"),
    "error": ("✗", "bold red"),
}
# Seconds a notice is shown when its caller does not say: errors twice as long.
SHOWN_S = 4.0
ERROR_SHOWN_S = 8.0


@dataclass
class Notices:
    severity: str = ""
    text: str = ""
    until: float = 0.0

    def show(
        self, severity: str, title: str, text: str, now: float, seconds: float | None
    ) -> float:
        """Take the line for `seconds` (None: the default for `severity`); returns them."""
        if seconds is None:
            seconds = ERROR_SHOWN_S if severity == "error" else SHOWN_S
        self.severity = severity
        self.text = f"{title}: {text}" if title else text
        self.until = now + seconds
        return seconds

    def line(self, now: float) -> Text | None:
        """The notice as the activity line shows it, or None once it expired."""
        if not self.text or now >= self.until:
            return None
        glyph, style = LOOK.get(self.severity, LOOK["information"])
        return Text(f"{glyph} {self.text}", style)
