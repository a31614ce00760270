"""The mailbox keeps every distinct letter per task, round and recipient, by the
sender each names: a recipient sees only its own letters, the same letter posted
again is a no-op, a different one is kept beside the first (the recipient checks the
signatures), and a malformed letter file is refused by name."""

from __future__ import annotations

import re

import pytest

from offchain.errors import StorageError
from offchain.storage.exchange import LocalExchange
from offchain.storage.mailbox import Letter, Mailbox

ALICE = "0x" + "A1" * 20
BOB = "0x" + "B2" * 20
CAROL = "0x" + "C3" * 20


def _letter(sender: str = ALICE, recipient: str = BOB, blob: bytes = b"\x01" * 32,
            signature: bytes = b"\x02" * 65) -> Letter:
    return Letter(sender, recipient, blob, signature)


def test_a_recipient_sees_its_own_letters_of_the_round_by_sender(tmp_path):
    box = Mailbox(tmp_path)
    to_bob, carol_to_bob, to_carol = _letter(), _letter(CAROL), _letter(recipient=CAROL)
    for letter in (to_bob, carol_to_bob, to_carol):
        box.post(1, 0, letter)

    assert box.inbox(1, 0, BOB) == {ALICE: [to_bob], CAROL: [carol_to_bob]}
    assert box.inbox(1, 0, CAROL) == {ALICE: [to_carol]}
    assert box.inbox(1, 0, BOB.lower()) == box.inbox(1, 0, BOB)
    assert box.inbox(1, 0, ALICE) == {}
    assert box.inbox(1, 1, BOB) == {}
    assert box.inbox(2, 0, BOB) == {}


def test_posting_the_same_letter_again_is_a_no_op(tmp_path):
    box = Mailbox(tmp_path)
    box.post(1, 0, _letter())
    (path,) = (tmp_path / "1" / "0" / BOB.lower()).iterdir()
    written = path.read_bytes(), path.stat().st_mtime_ns

    box.post(1, 0, _letter())

    assert (path.read_bytes(), path.stat().st_mtime_ns) == written
    assert box.inbox(1, 0, BOB) == {ALICE: [_letter()]}


@pytest.mark.parametrize("second", [
    _letter(blob=b"\x03" * 32),
    _letter(signature=b"\x04" * 65),
], ids=["another-blob", "another-signature"])
def test_a_different_second_letter_is_kept_beside_the_first(tmp_path, second):
    """Nobody is authenticated here: a letter in Alice's name must not crowd out
    hers, and two letters both signed by her show she sent two faces."""
    box = Mailbox(tmp_path)
    box.post(1, 0, _letter())
    box.post(1, 0, second)
    assert sorted(box.inbox(1, 0, BOB)[ALICE], key=repr) == sorted(
        [_letter(), second], key=repr)
    box.post(1, 1, second)  # another round is another folder
    assert box.inbox(1, 1, BOB) == {ALICE: [second]}


@pytest.mark.parametrize("content", [
    "{ torn",
    '{"sender": "x", "recipient": "y", "blob": "zz", "signature": ""}',
    '{"sender": "x"}',
], ids=["torn", "not-hex", "missing-fields"])
def test_a_malformed_letter_file_is_refused_by_name(tmp_path, content):
    box = Mailbox(tmp_path)
    path = tmp_path / "1" / "0" / BOB.lower() / f"{ALICE.lower()}-torn.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    malformed = f"^malformed letter {re.escape(str(path))}: "
    with pytest.raises(StorageError, match=malformed):
        box.inbox(1, 0, BOB)
    assert path.read_text() == content


def test_the_local_exchange_carries_blobs_and_letters(tmp_path):
    exchange = LocalExchange(tmp_path)
    digest = exchange.put(b"sealed update")
    assert exchange.get(digest) == b"sealed update"
    letter = _letter(blob=digest)
    exchange.post(3, 2, letter)
    exchange.post(3, 2, letter)
    assert exchange.inbox(3, 2, BOB) == {ALICE: [letter]}
