"""The Typer apps every command module registers on (one module per command family)."""

from __future__ import annotations

import typer
import typer.core

_PLAIN = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "file": "FILE",
          "dir": "FOLDER", "datetime": "DATETIME", "bool": "BOOLEAN"}


def _plain_type_names() -> None:
    """Show click's plain value names in --help (``--out PATH``, ``--stride INTEGER``; nothing
    for flags and arguments) instead of the Python type tags recent Typer prints (``<bool>``,
    ``<list[str]>``, ``<int range>``), which mean nothing to a user."""
    base = getattr(typer.core, "_TyperParameter", None)
    tagged = getattr(base, "display_type", None)
    if tagged is None or getattr(tagged, "_maskface_plain", False):
        return  # a Typer without type tags, or already done

    def display_type(self, ctx):
        if self.param_type_name == "argument" or getattr(self, "is_flag", False) \
                or getattr(self, "count", False):
            return None
        label = tagged(self, ctx).strip("<>")
        if label.startswith("list[") and label.endswith("]"):
            label = label[5:-1]
        label = label.removesuffix(" range")
        if "|" in label:  # choices
            return f"[{label}]"
        return _PLAIN.get(label, label.upper())

    display_type._maskface_plain = True
    base.display_type = display_type


_plain_type_names()

app = typer.Typer(
    name="maskface",
    help="Detect faces, classify masks and recognise people, even with a mask on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train models (needs the 'train' extra: PyTorch).",
                        no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models; every command writes a JSON report and plots.",
                       no_args_is_help=True)
people_app = typer.Typer(help="Manage enrolled people in the gallery.", no_args_is_help=True)


@eval_app.callback()
def _eval_needs_plots() -> None:
    # every evaluation ends in plots: say what is missing before it runs, not after
    from maskface.cli.common import user_errors
    from maskface.errors import require_extra

    user_errors(require_extra)("eval", "matplotlib", doing="evaluation (its plots)")


app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(people_app, name="people")
