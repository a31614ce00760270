"""The ``fedshare`` command line: one command for every party."""

from offchain.cli.app import app
from offchain.cli.device import device_app
from offchain.cli.owner import owner_app
from offchain.cli.task import aggregator_app, requester_app, task_app
from offchain.cli.wallet import wallet_app

app.add_typer(wallet_app, name="wallet")
app.add_typer(device_app, name="device")
app.add_typer(owner_app, name="owner")
app.add_typer(task_app, name="task")
app.add_typer(aggregator_app, name="aggregator")
app.add_typer(requester_app, name="requester")

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
