"""fedshare off-chain workers: devices, aggregator, requester and owner roles."""

__all__ = ["__version__"]

__version__ = "0.1.0"
