"""The requester and owner scripts against a real Anvil node, with keys from files."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from offchain.chain.accounts import load_keystore, new_wallet
from offchain.chain.contracts import CREDITOR_ROLE, Deployment, Fedshare
from offchain.chain.node import Chain
from offchain.cli import app
from offchain.paths import project_root

ETHER = 10**18
pytestmark = pytest.mark.anvil


def _script(name: str):
    path = project_root() / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_publish_and_claim_through_the_command_line(anvil_url, tmp_path,
                                                           monkeypatch, capsys):
    chain = Chain.connect(anvil_url)
    runner = CliRunner()
    monkeypatch.setenv("FEDSHARE_PASSWORD", "correct horse")
    keystores = {}
    for role in ("requester", "owner"):
        keystores[role] = tmp_path / f"{role}.json"
        result = runner.invoke(app, ["new-account", str(keystores[role])])
        assert result.exit_code == 0, result.output
        assert "correct horse" not in result.output
        wallet = load_keystore(keystores[role], "correct horse")
        chain.fund(wallet.address, 10 * ETHER)
    result = runner.invoke(app, ["paillier-keys", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["deploy", "--rpc-url", anvil_url, "--keystore",
                                 str(keystores["requester"]), "--out",
                                 str(tmp_path / "deployment.json")])
    assert result.exit_code == 0, result.output

    publish = _script("publish_task")
    code = publish.main(["--rpc-url", anvil_url, "--deployment",
                         str(tmp_path / "deployment.json"), "--keystore",
                         str(keystores["requester"]), "--paillier-key",
                         str(tmp_path / "keys" / "paillier.pub.json"), "--rounds", "3",
                         "--reward-eth", "0.25", "--blobs", str(tmp_path / "blobs")])
    assert code == 0
    assert "task 1 published" in capsys.readouterr().out
    fs = Fedshare(chain, Deployment.load(tmp_path / "deployment.json"))
    assert fs.task_state(1).escrow == 3 * ETHER // 4

    # Two devices of the owner are credited rewards (the deployer, the vault's admin,
    # lets itself credit); the claim script collects both in one transaction.
    owner = load_keystore(keystores["owner"], "correct horse")
    admin = load_keystore(keystores["requester"], "correct horse")
    devices = [new_wallet(), new_wallet()]
    for device in devices:
        fs.register_device(owner, device)
    chain.transact(admin, fs.vault.functions.grantRole(CREDITOR_ROLE, admin.address))
    chain.transact(admin, fs.vault.functions.credit([d.address for d in devices],
                                                    [ETHER // 10, ETHER // 5]),
                   value=3 * ETHER // 10)
    before = chain.balance(owner.address)
    claim = _script("claim_rewards")
    args = ["--rpc-url", anvil_url, "--deployment", str(tmp_path / "deployment.json"),
            "--keystore", str(keystores["owner"])]
    assert claim.main(args) == 0
    assert "claimed 0.3 ETH" in capsys.readouterr().out
    assert chain.balance(owner.address) > before + ETHER // 4
    assert fs.total_owed() == 0
    assert claim.main(args) == 0
    assert "claimed 0.0 ETH" in capsys.readouterr().out

    monkeypatch.setenv("FEDSHARE_PASSWORD", "wrong")
    assert claim.main(args) == 2
    assert "wrong password" in capsys.readouterr().err
