"""The four workflows of a task: requester, device, aggregator and owner."""

from offchain.roles.aggregator import Aggregator
from offchain.roles.device import Device, DeviceRound
from offchain.roles.owner import Owner
from offchain.roles.requester import Requester, TaskPlan

__all__ = ["Aggregator", "Device", "DeviceRound", "Owner", "Requester", "TaskPlan"]
