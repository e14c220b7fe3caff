"""Reading a study's results from its storage alone (no model, no data): the trials table,
the Pareto front and its hypervolume, per-layer views of a trial's policy, study summaries.

Used by ``autocompress pareto``, the report, the dashboard and the search's own output files.
"""

from autocompress.results._browse import (
    LAYER_COLUMNS,
    constraint_limits,
    hypervolume_curve,
    layer_table,
    stored_policy,
    study_summaries,
)
from autocompress.results._front import (
    HV_REFERENCE,
    column_names,
    front_summary,
    front_table,
    objectives_of,
    study_hypervolume,
    trials_table,
)
from autocompress.results._pareto import (
    hypervolume,
    normalise,
    normalised_hypervolume,
    normalised_reference,
    pareto_front,
    pareto_mask,
    to_losses,
)

__all__ = [
    "HV_REFERENCE",
    "LAYER_COLUMNS",
    "column_names",
    "constraint_limits",
    "front_summary",
    "front_table",
    "hypervolume",
    "hypervolume_curve",
    "layer_table",
    "normalise",
    "normalised_hypervolume",
    "normalised_reference",
    "objectives_of",
    "pareto_front",
    "pareto_mask",
    "stored_policy",
    "study_hypervolume",
    "study_summaries",
    "to_losses",
    "trials_table",
]
