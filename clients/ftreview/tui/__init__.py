"""`ftreview review`: the terminal review screen, built on Textual.

This package is the only part of ftreview that imports Textual. Core, client and CLI modules
never import it at module level (the CLI imports `ftreview.tui.app.run_review` inside the
`review` command), so scripting ftreview never pays for, or depends on, the UI library.
Importing this package itself imports nothing.
"""
