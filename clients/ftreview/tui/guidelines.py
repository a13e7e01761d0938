"""The reviewer's guidelines: `learn.guidelines` in `<home>/config.json5`, a short list of
strings ("approve facts about the user, not about the world"), shown in the legend.

Read once, when the screen starts, by the one config reader (`ftreview.core.defaults`).
The guidelines only inform, so they never stop the screen: no file, no key, a value that
is not a list of strings, or a file that cannot be read or parsed all mean no guidelines
(the Review reports a broken file on its own). At most `MAX_GUIDELINES` are kept, each on
one line.
"""

from __future__ import annotations

from pathlib import Path

from ftreview.core.defaults import CONFIG_NAME, ConfigFileError, default_home, read_config

MAX_GUIDELINES = 9


def read_guidelines(home: str | None) -> tuple[str, ...]:
    path = (Path(home).expanduser() if home else default_home()) / CONFIG_NAME
    try:
        document = read_config(path)
        raw = document.values("learn").get("guidelines") if document is not None else None
    except (ConfigFileError, OSError, ValueError):
        return ()
    if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
        return ()
    return tuple(" ".join(g.split()) for g in raw if g.strip())[:MAX_GUIDELINES]
