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

from ftreview.tui.views import TokenView

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


def _locate(text: str, content: str, cursor: int) -> tuple[int, int] | None:
    """Where a token's text sits in the reply, near `cursor` (where the last token ended)."""
    if not text:
        return None
    if content.startswith(text, cursor):
        return cursor, cursor + len(text)
    # A token of the same character(s) as the one before: its span overlaps the last one.
    for start in range(max(0, cursor - len(text)), cursor):
        if content.startswith(text, start):
            return start, start + len(text)
    # Text outside the reply (a template's newline) around the part that is in it.
    stripped = text.strip()
    if stripped and stripped != text:
        found = content.find(stripped, max(0, cursor - len(stripped)), cursor + len(text) + 1)
        if found >= 0:
            return found, found + len(stripped)
    return None


def _copies(text: str, content: str, cursor: int) -> int:
    count = 0
    while content.startswith(text, cursor + count * len(text)):
        count += 1
    return count


def token_spans(tokens: Sequence[TokenView], content: str) -> list[tuple[int, int, float]]:
    """Each token placed on the reply as (start, end, divergence); unplaceable ones left out.

    A run of k tokens with the same text in front of m copies of that text is spread evenly
    over the copies: the byte tokens of "你你" (six of "你") are three per character, while
    "ha" "ha" before "haha" is one each. Runs the reply does not continue overlap the token
    before (the last bytes of a character that an earlier token began).
    """
    spans: list[tuple[int, int, float]] = []
    cursor = 0
    index = 0
    while index < len(tokens):
        text = tokens[index].text
        run = 1
        while index + run < len(tokens) and tokens[index + run].text == text:
            run += 1
        copies = _copies(text, content, cursor) if text else 0
        if copies == 0:
            for token in tokens[index : index + run]:
                where = _locate(token.text, content, cursor)
                if where is not None:
                    spans.append((where[0], where[1], token.divergence))
                    cursor = max(cursor, where[1])
        else:
            for offset, token in enumerate(tokens[index : index + run]):
                slot = offset if run <= copies else offset * copies // run
                start = cursor + slot * len(text)
                spans.append((start, start + len(text), token.divergence))
            cursor += min(run, copies) * len(text)
        index += run
    return spans


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
    return text
