"""Colouring a reply by its per-token divergence.

Each token's background says how much more likely the memories made it, on a fixed scale in
nats (not one relative to the reply), so the same colour means the same thing on every reply
and a reviewer can compare two replies at a glance. Tokens the memories made *less* likely
get a cool tint; tokens near zero are left plain, because most of a reply is ordinary
language the model would have said anyway. The legend is drawn from the same scale, so it
cannot disagree with the reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

from ftreview.tui.board import TokenView

# (lower bound in nats, background). A token takes the last band whose bound it reaches.
WARM_BANDS: tuple[tuple[float, str], ...] = (
    (0.25, "#4a3000"),
    (0.5, "#7a4a00"),
    (1.0, "#a85a00"),
    (2.0, "#c83c00"),
    (4.0, "#e00030"),
)
COOL_BAND: tuple[float, str] = (-0.5, "#1c3a5a")


def band_background(divergence: float) -> str | None:
    """The background colour for a token, or None for a plain one."""
    if divergence <= COOL_BAND[0]:
        return COOL_BAND[1]
    colour = None
    for bound, background in WARM_BANDS:
        if divergence >= bound:
            colour = background
    return colour


def highlight_tokens(tokens: Sequence[TokenView], content: str) -> Text:
    """The reply as rich text, each token on its divergence colour.

    Falls back to the plain content when the Review sent no per-token scores.
    """
    if not tokens:
        return Text(content)
    text = Text()
    for token in tokens:
        background = band_background(token.divergence)
        if background is None:
            text.append(token.text)
        else:
            text.append(token.text, Style(bgcolor=background, color="white", bold=True))
    return text


def legend_scale() -> Text:
    """One line per colour band, as used in the reply view."""
    text = Text()
    text.append("  token  ", Style(bgcolor=COOL_BAND[1], color="white"))
    text.append(f"  memories made it less likely (≤ {COOL_BAND[0]:g} nats)\n")
    text.append("  token  ")
    text.append(f"  about as likely either way (< {WARM_BANDS[0][0]:g} nats)\n")
    for index, (bound, background) in enumerate(WARM_BANDS):
        upper = WARM_BANDS[index + 1][0] if index + 1 < len(WARM_BANDS) else None
        span = f"{bound:g} to {upper:g}" if upper is not None else f"≥ {bound:g}"
        text.append("  token  ", Style(bgcolor=background, color="white", bold=True))
        text.append(f"  memories made it more likely: {span} nats\n")
    return text
