"""``goldenhour solve``: registered into the main parser by ``cli.build_parser``."""

from __future__ import annotations


def register(sub) -> None:
    """Add the search commands to the ``goldenhour`` sub-command parser."""
