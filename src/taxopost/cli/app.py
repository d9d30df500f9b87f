"""The ``taxopost`` typer app that every command module registers its commands on.

Light modules register on :data:`app` when :mod:`taxopost.cli` imports them. The modules of
:data:`DEFERRED` (the core on files, the evaluator, ``run`` with its options from every task's
config, the importers) each keep their own typer app, imported only when one of their commands
runs or shows its own help: ``taxopost --help`` lists them from the short help here, and starts
without numpy, pydantic, scipy or matplotlib (``benchmarks/startup.py``).
"""

from __future__ import annotations

import importlib

import click
import typer

app = typer.Typer(
    name="taxopost",
    help="Post-processing of species-classifier predictions: rank roll-up, class masking, "
    "small-size filter, occurrence consensus, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Each deferred command: ``name -> (module, short help)``. The module defines ``commands``, the
#: typer app its commands are on (for ``import``: the group itself). The short help is the first
#: line of the command's own help (tests/cli/test_startup.py holds them equal).
DEFERRED: dict[str, tuple[str, str]] = {
    "evaluate": (
        "taxopost.cli.evaluate",
        "Evaluate pipelines of post-processing steps side by side against ground truth.",
    ),
    "calibrate": (
        "taxopost.cli.evaluate",
        "Choose per-rank roll-up thresholds that reach a target precision, with a finite-sample guarantee.",
    ),
    "rollup": (
        "taxopost.cli.files",
        "Roll unconfident predictions up to the first rank whose aggregate clears its threshold.",
    ),
    "mask": (
        "taxopost.cli.files",
        "Restrict predictions to a taxa list (a listed taxon admits its descendants) and recompute the winner.",
    ),
    "import": (
        "taxopost.cli.imports",
        "Import taxonomies, category maps, predictions, identifications, taxa lists.",
    ),
    "run": (
        "taxopost.cli.runs",
        "Run a post-processing task on a capture set or an occurrence, as a job.",
    ),
    "evaluate-capture-set": (
        "taxopost.cli.evaluate",
        "The same evaluation on the database: a capture set's model outputs against its identifications.",
    ),
    "calibrate-capture-set": (
        "taxopost.cli.evaluate",
        "Calibrate roll-up thresholds on a capture set's identified model outputs, and print them in the "
        "form Antenna's rank roll-up admin action takes (upper-case ranks, rollup_order).",
    ),
}


class DeferredCommand(click.Command):
    """A command listed by its short help; its module is imported and its command built on first use.

    Click hands a subcommand its arguments through :meth:`make_context`: the real command makes
    the context, so it parses, shows its help and is invoked as if it had been there all along.
    """

    def __init__(self, name: str, module: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help, add_help_option=False)
        self.module = module
        self._real: click.Command | None = None

    def real(self) -> click.Command:
        if self._real is None:
            built = typer.main.get_command(importlib.import_module(self.module).commands)
            group = isinstance(built, click.Group) and self.name in built.commands
            self._real = built.commands[self.name] if group else built
        return self._real

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        return self.real().invoke(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.real().get_params(ctx)

    def get_help(self, ctx: click.Context) -> str:
        return self.real().get_help(ctx)


def build() -> click.Group:
    """The whole command: the light commands built by typer, the deferred ones added unbuilt."""
    group = typer.main.get_command(app)
    for name, (module, short_help) in DEFERRED.items():
        group.add_command(DeferredCommand(name, module, short_help), name)
    return group
