"""Privacy spending that survives a restart: one JSON file per task and device.

A device's :class:`~offchain.privacy.dp.PrivacyAccountant` lives in memory; if
the process stops, the ε it spent must not be forgotten, or a restarted device
would train again from ε = 0 and overspend its budget. :class:`AccountantStore`
keeps each accountant as ``task-<id>/<address>.json`` under one directory,
written atomically (temporary file in the same folder, fsync, rename), so a
crash leaves either the old or the new state on disk, never a torn file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from offchain.errors import PrivacyError
from offchain.privacy.dp import PrivacyAccountant
from offchain.storage.atomic import write_atomic

__all__ = ["AccountantStore"]

_FORMAT = "fedshare-accountant"
_FILE_VERSION = 1
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class AccountantStore:
    """Saves and loads the privacy accountant of each (task, device) pair.

    Files live at ``directory / f"task-{task_id}" / f"{address.lower()}.json"``;
    folders are created on the first :meth:`save`. Each file records the task id
    and device address it belongs to next to the accountant's
    :meth:`~offchain.privacy.dp.PrivacyAccountant.to_dict` state, and
    :meth:`load` refuses a file that does not match what the caller expects
    (another task or device, another δ, another budget). Raises nothing on
    construction.
    """

    def __init__(self, directory: Path | str) -> None:
        self._directory = Path(directory)

    @property
    def directory(self) -> Path:
        """The folder that holds the state files."""
        return self._directory

    def path_for(self, task_id: int, device: str) -> Path:
        """Where the accountant of ``device`` in task ``task_id`` is kept.

        Raises PrivacyError for a task id that is not a non-negative int or an
        address that is not ``0x`` and 40 hex digits.
        """
        _check_key(task_id, device)
        return self._directory / f"task-{task_id}" / f"{device.lower()}.json"

    def exists(self, task_id: int, device: str) -> bool:
        """True if a state file is stored for ``device`` in task ``task_id``.

        Raises PrivacyError for an invalid task id or address (see :meth:`path_for`).
        """
        return self.path_for(task_id, device).is_file()

    def save(self, task_id: int, device: str, accountant: PrivacyAccountant) -> Path:
        """Writes ``accountant`` for ``device`` in task ``task_id`` atomically and
        returns the file's path.

        The state goes to a temporary file in the same folder, is fsynced and
        then renamed over the old file (and the folder fsynced), so readers see
        the old or the new state, never a partial one; no temporary file is left
        behind, even on failure. Raises PrivacyError for an invalid task id or
        address, or naming the path if the file cannot be written.
        """
        path = self.path_for(task_id, device)
        document = {
            "format": _FORMAT,
            "version": _FILE_VERSION,
            "task_id": task_id,
            "device": device,
            # Informational, for people reading the file; recomputed on load.
            "epsilon": accountant.epsilon,
            "accountant": accountant.to_dict(),
        }
        try:
            text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        except ValueError:
            # ε is inf when σ was ever 0: JSON has no inf; the history says it all.
            document["epsilon"] = None
            text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        try:
            write_atomic(path, text)
        except OSError as exc:
            raise PrivacyError(
                f"cannot save the privacy accountant to {path}: {exc}"
            ) from exc
        return path

    def load(
        self, task_id: int, device: str, *, delta: float, budget: float | None
    ) -> PrivacyAccountant | None:
        """The stored accountant of ``device`` in task ``task_id``, or None if none
        is stored.

        ``delta`` and ``budget`` are what the caller runs under (the DP config's
        δ, the task's ε budget or None); the file must agree with both.
        Raises PrivacyError naming the file if it cannot be read, is not valid
        JSON, has another format or version, belongs to another task or device,
        holds a malformed accountant state, or records another δ or budget; or
        for an invalid task id or address.
        """
        path = self.path_for(task_id, device)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PrivacyError(
                f"cannot read the privacy accountant at {path}: {exc}"
            ) from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise PrivacyError(
                f"privacy accountant file {path} is not valid JSON: {exc}"
            ) from exc
        return _parse(document, path, task_id, device, delta, budget)

    def load_or_create(
        self, task_id: int, device: str, *, delta: float, budget: float | None
    ) -> PrivacyAccountant:
        """The stored accountant (see :meth:`load`), or a fresh one with ``delta``
        and ``budget`` if none is stored (nothing is written).

        Raises PrivacyError as :meth:`load` does, or for an invalid ``delta``
        or ``budget``.
        """
        stored = self.load(task_id, device, delta=delta, budget=budget)
        if stored is not None:
            return stored
        return PrivacyAccountant(delta=delta, budget=budget)

    def __repr__(self) -> str:
        return f"AccountantStore({str(self._directory)!r})"


def _check_key(task_id: Any, device: Any) -> None:
    if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 0:
        raise PrivacyError(f"task id must be a non-negative int, got {task_id!r}")
    if not isinstance(device, str) or not _ADDRESS.fullmatch(device):
        raise PrivacyError(
            f"device must be a 0x-prefixed 20-byte hex address, got {device!r}"
        )


def _same(stored: float | None, expected: float | None) -> bool:
    if stored is None or expected is None:
        return stored is None and expected is None
    return math.isclose(stored, expected, rel_tol=1e-12, abs_tol=0.0)


def _parse(
    document: Any,
    path: Path,
    task_id: int,
    device: str,
    delta: float,
    budget: float | None,
) -> PrivacyAccountant:
    if not isinstance(document, dict):
        raise PrivacyError(
            f"privacy accountant file {path} holds a {type(document).__name__}, "
            "expected an object"
        )
    if document.get("format") != _FORMAT:
        raise PrivacyError(
            f"privacy accountant file {path} has format "
            f"{document.get('format')!r}, expected {_FORMAT!r}"
        )
    if document.get("version") != _FILE_VERSION:
        raise PrivacyError(
            f"privacy accountant file {path} has version "
            f"{document.get('version')!r}, expected {_FILE_VERSION}"
        )
    stored_task = document.get("task_id")
    if isinstance(stored_task, bool) or stored_task != task_id:
        raise PrivacyError(
            f"privacy accountant file {path} belongs to task {stored_task!r}, "
            f"not task {task_id}"
        )
    stored_device = document.get("device")
    if not isinstance(stored_device, str) or stored_device.lower() != device.lower():
        raise PrivacyError(
            f"privacy accountant file {path} belongs to device {stored_device!r}, "
            f"not {device}"
        )
    try:
        accountant = PrivacyAccountant.from_dict(document.get("accountant"))
    except PrivacyError as exc:
        raise PrivacyError(
            f"privacy accountant file {path} is malformed: {exc}"
        ) from exc
    if not _same(accountant.delta, delta):
        raise PrivacyError(
            f"privacy accountant file {path} reports ε at δ={accountant.delta:g}, "
            f"but the DP config uses δ={delta:g}"
        )
    if not _same(accountant.budget, budget):
        raise PrivacyError(
            f"privacy accountant file {path} has ε budget {accountant.budget}, but "
            f"the task's budget is {budget}"
        )
    return accountant
