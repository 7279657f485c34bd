"""SIGTERM as an orderly stop: what finished is kept, one line says so.

results/run.Run installs the handler for the length of a run: inside a case SIGTERM raises
Terminated, which the front-end turns into one line and exit 143. The journal holds SIGTERM back
while it writes a record (results/journal.py), so a terminated run never leaves half a line;
`--resume` continues it. The engine lets `Terminated` pass, since it is not an Exception.
"""

from __future__ import annotations


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM)."""
