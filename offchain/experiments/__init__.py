"""Experiments: the paper's table on the data fedshare has (simulation and chain path)."""
