"""``python -m tools.simulate --devnet D``: play the simulated town on a running devnet."""

from __future__ import annotations

from pathlib import Path

import click

from node.devnet.town.drive import DriveError, drive


@click.command(help="Play a simulated town (households, shops, suppliers) on a running devnet.")
@click.option(
    "--devnet",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The devnet folder (relance-node devnet --home).",
)
@click.option("--node", "node_url", default="http://127.0.0.1:26601", show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--households", default=150, show_default=True)
@click.option("--days", default=28, show_default=True)
@click.option("--issuer", "issuer_index", default=0, show_default=True)
def main(
    devnet: Path, node_url: str, seed: int, households: int, days: int, issuer_index: int
) -> None:
    try:
        outcome = drive(devnet, node_url, seed, households, days, issuer_index)
    except DriveError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{outcome.accepted}/{outcome.submitted} accepted; refused: {outcome.rejected}")


if __name__ == "__main__":
    main()
