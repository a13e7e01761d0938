"""ftreview: the client side of the ftreview services.

`ftreview.v1` holds the code generated from `protos/ftreview/v1` (never edited by hand);
`ftreview.core` what the services and clients share (wire conversions, defaults, the
conversation model); `ftreview.client` the typed clients; `ftreview.cli` the command.
Importing this package imports nothing heavy.
"""

from __future__ import annotations

__version__ = "0.1.0"
