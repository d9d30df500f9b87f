"""``taxopost manage drf_create_token USER``: DRF's command name, kept working on the hashed tokens.

DRF's own command stored the key in clear and reused it; this one always makes a new token (as
``create_token``), so ``-r``/``--reset`` is accepted and changes nothing.
"""

from __future__ import annotations

from taxopost.access.management.commands import create_token


class Command(create_token.Command):
    help = "Same as create_token (the name DRF's command had): a new token, its key printed once."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "-r", "--reset", action="store_true", help="accepted for DRF's scripts; every call makes a new token"
        )

    def handle(self, *args, reset: bool = False, **options) -> None:
        super().handle(*args, **options)
