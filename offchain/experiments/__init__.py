"""Experiments: the paper's tables on the data fedshare has (simulation and chain path).

Experiment-only code lives here, never in the runtime packages it builds on
(``learning``, ``privacy``, ``roles``): what a run is (``scenario``), its data sets
(``datasets``), attacks (``attacks``), aggregation rules (``rules``, with the robust
baselines in ``robust``), non-IID splits (``partition``), the simulation
(``simulate``), running suites with a cache of finished runs (``run``, ``cache``,
``suites``), tables and plots (``report``) and rows through the whole system
(``chain``). Import what you need from those modules.
"""

__all__: list[str] = []
