"""Classification DMT on any image set: the stage runner, its data (a registry of datasets and the paper's split),
steps, evaluation, panels."""
