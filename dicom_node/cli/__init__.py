"""``dicom-node``: the operations command line.

Each sub-command lives in its own module of this package (or of ``pipeline``)
and is imported lazily, so ``dicom-node echo`` does not import torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from dicom_node.logging_setup import configure_logging

#: command name -> "module:attribute" of a click command
_COMMANDS: dict[str, str] = {
    "serve": "dicom_node.cli.serve:serve",
    "worker": "dicom_node.cli.worker:worker",
    "status": "dicom_node.cli.status:status",
    "echo": "dicom_node.cli.scu:echo",
    "send": "dicom_node.cli.scu:send",
    "inspect": "pipeline.cli_inspect:inspect_cmd",
    "analyze": "pipeline.cli_analyze:analyze",
    "results": "dicom_node.cli.results:results",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported only when used."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available(ctx)))

    def _available(self, ctx: click.Context) -> list[str]:
        names = []
        for name, target in self._lazy.items():
            module = target.partition(":")[0]
            if importlib.util.find_spec(module) is not None:
                names.append(name)
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, _, attr = self._lazy[cmd_name].partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    return None
                raise
            command = getattr(module, attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=_COMMANDS)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="neurotriage-node")
def main(verbose: int) -> None:
    """NeuroTriage Node: a DICOM node that triages brain MRI studies."""
    configure_logging(verbose)
