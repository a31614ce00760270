"""Views: one ``eth_call`` each, calldata encoded from the ABI, reverts by name, and
within :meth:`Chain.pinned` one block read once and shared."""

from __future__ import annotations

import pytest

from offchain.chain.node import Chain
from offchain.errors import ConfigError
from tests.contracts.helpers import reverts_with


@pytest.fixture
def calls(fs, monkeypatch) -> list[tuple[str, str, object]]:
    """Every eth_call the chain sends: (to, calldata, block)."""
    sent: list[tuple[str, str, object]] = []
    real = Chain._call

    def counted(self, to, data, block):
        sent.append((to, data, block))
        return real(self, to, data, block)

    monkeypatch.setattr(Chain, "_call", counted)
    return sent


def test_a_view_is_one_call_with_the_calldata_web3_would_send(fs, actors, calls):
    owner = fs.devices._view("ownerOf", actors.devices[0].address)
    web3_data = fs.devices.functions.ownerOf(
        actors.devices[0].address)._encode_transaction_data()
    assert calls == [(fs.devices.address, web3_data, "latest")]
    assert owner == fs.chain.view(fs.devices.functions.ownerOf(actors.devices[0].address))


def test_within_a_pin_a_view_asked_twice_is_sent_once_until_the_chain_moves(
        fs, actors, calls):
    device = actors.devices[0]
    chain = fs.chain
    is_active = fs.devices.functions.isActive(device.address)._encode_transaction_data()

    def asked() -> list[object]:
        return [block for _, data, block in calls if data == is_active]

    with chain.pinned():
        before = chain.now()
        assert fs.devices.is_active(device.address) is False
        assert fs.devices.is_active(device.address) is False
        assert len(asked()) == 1 and isinstance(asked()[0], int)
        # This chain sends a transaction: the pin moves to the new latest block.
        fs.devices.register_device(actors.owner, device)
        assert fs.devices.is_active(device.address) is True
        assert len(asked()) == 2 and asked()[1] > asked()[0]
        assert chain.now() >= before
    # Outside a pin nothing is remembered.
    fs.devices.is_active(device.address)
    fs.devices.is_active(device.address)
    assert asked()[2:] == ["latest", "latest"]


def test_a_reverting_call_names_the_contract_error(fs, actors):
    data = fs.tasks.functions.join(999)._encode_transaction_data()
    with reverts_with("TaskRegistryUnknownTask"):
        fs.chain.call(fs.tasks.address, data)


def test_a_view_asked_with_a_value_its_type_cannot_hold_is_refused_by_name(fs):
    with pytest.raises(ConfigError, match=r"taskState\(-1,\)"):
        fs.tasks._view("taskState", -1)
