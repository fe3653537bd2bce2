"""The Typer apps every command module registers on (one module per command family)."""

from __future__ import annotations

import typer

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

app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(people_app, name="people")
