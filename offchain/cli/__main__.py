"""`python -m offchain.cli`: the fedshare command."""

from offchain.cli import main

main()
