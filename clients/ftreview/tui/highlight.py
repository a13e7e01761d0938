"""Colouring a reply by its per-token divergence, character by character.

The tokens' texts are cut from the reply by the tokenizer's offsets, and byte-level tokens of
one character (CJK, emoji, combining marks) share that character's span, so printing the
token texts one after another prints such a character once per token. Here the tokens are
placed back onto the reply as character spans instead, and the reply is printed from its own
characters. The invariants:

- the highlighted text is the reply, exactly (`plain == content`), whatever the tokens say;
- a character's colour is the largest divergence of the tokens that cover it;
- colour is never the only mark: characters of strong tokens (≥ `STRONG_NATS`, or the reply's
  peak) are also bold and underlined, which survives `NO_COLOR` and monochrome terminals;
- the scale is fixed in nats, not relative to the reply, so one colour means one thing on
  every reply; the legend is drawn from the same table, so it cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from ftreview.core.placement import token_spans
from ftreview.tui.views import GroundingSpanView, TokenView

# (lower bound in nats, background). A token takes the last band whose bound it reaches.
WARM_BANDS: tuple[tuple[float, str], ...] = (
    (0.25, "#4a3000"),
    (0.5, "#7a4a00"),
    (1.0, "#a85a00"),
    (2.0, "#c83c00"),
    (4.0, "#e00030"),
)
COOL_BAND: tuple[float, str] = (-0.5, "#1c3a5a")
STRONG_NATS = 1.0
"""Tokens at or above this are also bold and underlined (and the peak token always is)."""
STRONG_STYLE = Style(bold=True, underline=True)
NUMBER_STYLE = Style(dim=True, italic=True)


def band_background(divergence: float) -> str | None:
    """The background colour for a token, or None for a plain one."""
    if divergence <= COOL_BAND[0]:
        return COOL_BAND[1]
    colour = None
    for bound, background in WARM_BANDS:
        if divergence >= bound:
            colour = background
    return colour


@dataclass(frozen=True)
class Piece:
    """A run of the reply covered by one or more overlapping tokens."""

    start: int
    end: int
    divergence: float
    """The largest divergence of the tokens in the run (what its number says)."""


def char_divergences(tokens: Sequence[TokenView], content: str) -> list[float | None]:
    """Per character of the reply: the largest divergence of the tokens covering it."""
    values: list[float | None] = [None] * len(content)
    for start, end, divergence in token_spans(tokens, content):
        for index in range(start, end):
            current = values[index]
            values[index] = divergence if current is None else max(current, divergence)
    return values


def pieces(tokens: Sequence[TokenView], content: str) -> list[Piece]:
    """Overlapping token spans merged into runs, in reply order."""
    merged: list[Piece] = []
    for start, end, divergence in sorted(token_spans(tokens, content)):
        if merged and start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Piece(last.start, max(last.end, end), max(last.divergence, divergence))
        else:
            merged.append(Piece(start, end, divergence))
    return merged


def _style(divergence: float | None, strong: bool) -> Style | None:
    if divergence is None:
        return None
    background = band_background(divergence)
    style = Style(bgcolor=background, color="white") if background else None
    if strong:
        style = STRONG_STYLE if style is None else style + STRONG_STYLE
    return style


def highlight_tokens(tokens: Sequence[TokenView], content: str, *, numbers: bool = False) -> Text:
    """The reply as rich text, each character on the colour of its strongest token.

    With `numbers`, each run of tokens is followed by its divergence (dim, in brackets), so
    the plain text is then longer than the reply. Without per-token scores the reply is
    returned plain.
    """
    if not tokens:
        return Text(content)
    values = char_divergences(tokens, content)
    scored = [v for v in values if v is not None]
    peak = max(scored) if scored else None
    text = Text()
    ends = {piece.end: piece.divergence for piece in pieces(tokens, content)} if numbers else {}
    run_start = 0
    for index in range(1, len(content) + 1):
        at_end = index == len(content)
        boundary = at_end or values[index] != values[run_start] or index in ends
        if not boundary:
            continue
        value = values[run_start]
        strong = value is not None and (value >= STRONG_NATS or (value == peak and value > 0.25))
        text.append(content[run_start:index], _style(value, strong))
        if index in ends:
            text.append(f"[{ends[index]:.1f}]", NUMBER_STYLE)
        run_start = index
    return text


# A reply's flagged grounding spans (the Review's verdict per memory-driven part): its mark,
# what it means, and the style laid over the token colours.
GROUNDING_FLAGS: dict[str, tuple[str, str, Style]] = {
    "contradicts_memory": (
        "≠",
        "contradicts its memory",
        Style(color="white", bgcolor="#b00020", bold=True, underline=True),
    ),
    "beyond_memories": (
        "+",
        "beyond its memories",
        Style(color="white", bgcolor="#6a3d9a", bold=True, underline=True),
    ),
}


def grounding_lines(content: str, spans: Sequence[GroundingSpanView]) -> Text:
    """Under the reply, one short line per kind of flag: what the contradicted memory says
    instead (`≠ nodes[1] says 18 March · Haller`), and the words in no memory (`+ in no
    memory: Tromsø`). The reply's own colouring shows which words they are."""
    text = Text()
    said: dict[str, list[str]] = {}
    beyond: list[str] = []
    for span in spans:
        if span.kind == "contradicts_memory":
            said.setdefault(span.node_path, []).append(span.value)
        elif span.kind == "beyond_memories":
            beyond.append(content[span.start : span.end])
    mark, _, style = GROUNDING_FLAGS["contradicts_memory"]
    for node_path, values in said.items():
        text.append(f"\n{mark}", style)
        text.append(f" {node_path} says {' · '.join(values)}")
    if beyond:
        mark, _, style = GROUNDING_FLAGS["beyond_memories"]
        text.append(f"\n{mark}", style)
        text.append(f" in no memory: {' · '.join(beyond)}")
    return text


def mark_grounding(text: Text, spans: Sequence[GroundingSpanView]) -> Text:
    """`text` (the reply as `highlight_tokens` drew it, without numbers) with its flagged
    spans in their grounding colour."""
    for span in spans:
        if span.kind in GROUNDING_FLAGS and span.end <= len(text.plain):
            text.stylize(GROUNDING_FLAGS[span.kind][2], span.start, span.end)
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
        style = Style(bgcolor=background, color="white")
        if bound >= STRONG_NATS:
            style += STRONG_STYLE
        text.append("  token  ", style)
        text.append(f"  memories made it more likely: {span} nats\n")
    text.append("  token  ", STRONG_STYLE)
    text.append(
        f"  bold underline: ≥ {STRONG_NATS:g} nats or the reply's peak (seen without colour)\n"
    )
    for mark, meaning, style in GROUNDING_FLAGS.values():
        text.append(f" {mark} word  ", style)
        text.append(f"  the reply {meaning} (marked {mark} in the list)\n")
    return text
