"""`petsum`: summarize PET/CT findings into impressions, and train, evaluate and export the models
that write them. One module per command: each parses and validates its options and calls one
plain function of the library."""

from __future__ import annotations

import click

from deploy.cli import export_command
from petsum.cli import average, batch, evaluate, floor, memory, order, segment, serve, split, summarize, train
from petsum.summarize.folder import DEFAULT_MODEL

USER_COMMANDS = ("summarize", "batch", "serve", "evaluate", "train", "export")


class _Sections(click.Group):
    """`petsum --help` lists what a user runs first, then the research and maintenance commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        rest = sorted(name for name in self.commands if name not in USER_COMMANDS)
        return [name for name in USER_COMMANDS if name in self.commands] + rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.commands[name].get_short_help_str(formatter.width - 20)) for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl([r for r in rows if r[0] in USER_COMMANDS])
        with formatter.section("Research and maintenance"):
            formatter.write_dl([r for r in rows if r[0] not in USER_COMMANDS])


@click.group(cls=_Sections, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Summarize Chinese PET/CT findings into an impression with AS-ES trained models."""


for _module in (summarize, batch, serve, evaluate, train, segment, floor, order, memory, average, split):
    main.add_command(_module.command)
main.add_command(export_command(DEFAULT_MODEL))
