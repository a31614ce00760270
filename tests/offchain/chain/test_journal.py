"""The transaction journal: a transaction is written down before it leaves, so a run
that died before or after broadcasting it sends it exactly once, and never a second
transaction for the same action."""

from __future__ import annotations

import re

import pytest
from web3 import Web3
from web3.exceptions import Web3RPCError

from offchain.chain.journal import JournalEntry, TxJournal
from offchain.errors import ChainError, StateError
from offchain.protocol.terms import ZERO_ADDRESS
from tests.conftest import task_params

ENTRY = JournalEntry(label="join:3", sender="0x" + "ab" * 20, nonce=7,
                     tx_hash="12" * 32, raw="f86c")


class Crash(BaseException):
    """The process dies (not an error anything handles)."""


# ---------------------------------------------------------------- the file
def test_a_journal_holds_nothing_until_an_entry_is_recorded(tmp_path):
    journal = TxJournal(tmp_path / "journal.json")
    assert journal.pending() is None
    journal.record(ENTRY)
    assert journal.pending() == ENTRY
    assert TxJournal(tmp_path / "journal.json").pending() == ENTRY  # survives a restart
    journal.clear()
    assert journal.pending() is None
    assert TxJournal(tmp_path / "journal.json").pending() is None


@pytest.mark.parametrize(("content", "why"), [
    ("{ torn", "is unreadable"),
    ('{"label": "join:3"}', "is malformed"),
], ids=["torn", "missing-fields"])
def test_an_unreadable_journal_is_refused_by_name(tmp_path, content, why):
    path = tmp_path / "journal.json"
    path.write_text(content)
    with pytest.raises(StateError, match=f"^transaction journal {re.escape(str(path))} "
                                         f"{why}"):
        TxJournal(path).pending()


def test_a_journal_that_cannot_be_written_is_refused_by_name(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    path = tmp_path / "file" / "journal.json"
    with pytest.raises(StateError, match=f"^cannot write transaction journal "
                                         f"{re.escape(str(path))}"):
        TxJournal(path).record(ENTRY)


# ---------------------------------------------------------------- on the chain
def _publish_call(fs):
    params = task_params()
    return fs.tasks.functions.publishTask(params.as_tuple(), ZERO_ADDRESS, []), \
        params.escrow


def _journalled_but_not_sent(fs, wallet, journal: TxJournal,
                             label: str) -> JournalEntry:
    """Signs a publishTask from `wallet` at its next nonce and writes it to `journal`
    without broadcasting it: what a run that died right after journalling leaves."""
    call, value = _publish_call(fs)
    nonce = fs.chain.nonce_of(wallet.address, "pending")
    tx = call.build_transaction({"from": wallet.address, "value": value, "nonce": nonce,
                                 "chainId": fs.chain.chain_id})
    raw = wallet.sign_transaction(tx)
    entry = JournalEntry(label, wallet.address, nonce, Web3.keccak(raw).hex(),
                         raw.hex())
    journal.record(entry)
    return entry


def _published(fs) -> list:
    return fs.tasks.logs("TaskPublished", from_block=fs.deployment.block)


def test_a_journalled_transaction_never_broadcast_is_sent_exactly_once(fs, actors,
                                                                      tmp_path):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    entry = _journalled_but_not_sent(fs, wallet, journal, "publish")
    nonce, before = fs.chain.nonce_of(wallet.address), len(_published(fs))
    assert entry.nonce == nonce

    label, receipt = fs.chain.settle(wallet, journal)

    assert label == "publish" and receipt["status"] == 1
    assert receipt["transactionHash"].hex().removeprefix("0x") == \
        entry.tx_hash.removeprefix("0x")
    assert fs.chain.nonce_of(wallet.address) == nonce + 1
    assert len(_published(fs)) == before + 1
    assert journal.pending() is None
    # Settling again sends nothing.
    assert fs.chain.settle(wallet, journal) is None
    assert fs.chain.nonce_of(wallet.address) == nonce + 1
    assert len(_published(fs)) == before + 1


def test_the_same_action_after_a_crash_returns_the_journalled_transaction(fs, actors,
                                                                         tmp_path):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    _journalled_but_not_sent(fs, wallet, journal, "publish")
    nonce, before = fs.chain.nonce_of(wallet.address), len(_published(fs))

    task_id, receipt = fs.tasks.publish(wallet, task_params(), journal=journal,
                                        label="publish")

    assert fs.chain.nonce_of(wallet.address) == nonce + 1
    published = _published(fs)
    assert len(published) == before + 1
    assert published[-1]["args"]["taskId"] == task_id
    assert journal.pending() is None


def test_another_action_first_settles_the_journalled_one(fs, actors, tmp_path):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    _journalled_but_not_sent(fs, wallet, journal, "publish:a")
    nonce, before = fs.chain.nonce_of(wallet.address), len(_published(fs))

    fs.tasks.publish(wallet, task_params(), journal=journal, label="publish:b")

    assert fs.chain.nonce_of(wallet.address) == nonce + 2
    assert len(_published(fs)) == before + 2
    assert journal.pending() is None


def test_a_journalled_transaction_whose_nonce_was_used_meanwhile_is_dropped(fs, actors,
                                                                            tmp_path):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    _journalled_but_not_sent(fs, wallet, journal, "publish")
    fs.tasks.publish(wallet, task_params())  # the wallet sent from elsewhere
    nonce, before = fs.chain.nonce_of(wallet.address), len(_published(fs))

    assert fs.chain.settle(wallet, journal) is None

    assert fs.chain.nonce_of(wallet.address) == nonce
    assert len(_published(fs)) == before
    assert journal.pending() is None


def test_a_run_killed_after_journalling_leaves_the_transaction_to_the_next(
        fs, actors, tmp_path, monkeypatch):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    nonce, before = fs.chain.nonce_of(wallet.address), len(_published(fs))

    def die(raw):
        raise Crash("killed before the broadcast")

    monkeypatch.setattr(fs.chain.w3.eth, "send_raw_transaction", die)
    with pytest.raises(Crash):
        fs.tasks.publish(wallet, task_params(), journal=journal, label="publish")
    monkeypatch.undo()
    entry = journal.pending()
    assert (entry.label, entry.sender, entry.nonce) == (
        "publish", wallet.address, nonce)
    assert fs.chain.nonce_of(wallet.address) == nonce
    assert len(_published(fs)) == before

    fs.tasks.publish(wallet, task_params(), journal=journal, label="publish")

    assert fs.chain.nonce_of(wallet.address) == nonce + 1
    assert len(_published(fs)) == before + 1
    assert journal.pending() is None


def test_a_transaction_the_node_refuses_is_not_left_in_the_journal(fs, actors, tmp_path,
                                                                   monkeypatch):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    nonce = fs.chain.nonce_of(wallet.address)

    def refuse(raw):
        raise Web3RPCError("gas price below the node's minimum")

    monkeypatch.setattr(fs.chain.w3.eth, "send_raw_transaction", refuse)
    with pytest.raises(ChainError, match="refused the transaction: .*gas price below"):
        fs.tasks.publish(wallet, task_params(), journal=journal, label="publish")
    monkeypatch.undo()

    assert journal.pending() is None
    assert fs.chain.nonce_of(wallet.address) == nonce


def test_a_mined_transaction_leaves_the_journal_empty(fs, actors, tmp_path):
    wallet, journal = actors.requester, TxJournal(tmp_path / "journal.json")
    nonce = fs.chain.nonce_of(wallet.address)
    fs.tasks.publish(wallet, task_params(), journal=journal, label="publish")
    assert journal.pending() is None
    assert fs.chain.settle(wallet, journal) is None
    assert fs.chain.nonce_of(wallet.address) == nonce + 1
