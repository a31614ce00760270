"""The parties of a task as state machines over the chain: requester, device,
aggregator and owner (see :mod:`offchain.roles.base`)."""

from offchain.roles.aggregator import AggregatorRole
from offchain.roles.base import Role, Step, TaskView
from offchain.roles.device import DeviceRole
from offchain.roles.owner import Owner, OwnerRole
from offchain.roles.requester import RequesterRole, publish_task

__all__ = ["AggregatorRole", "DeviceRole", "Owner", "OwnerRole", "RequesterRole", "Role",
           "Step", "TaskView", "publish_task"]
