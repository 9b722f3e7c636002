"""``dmt suggest``: rank a run's unlabelled images by how much labelling them would help, and draft them.

:mod:`~dmt.suggest.terms` (the score's terms, pure), :mod:`~dmt.suggest.diversity` (the
near-duplicate rule), :mod:`~dmt.suggest.members` (what is read from the run),
:mod:`~dmt.suggest.rank` (the ranking pass), :mod:`~dmt.suggest.sheet` (the contact sheet),
:mod:`~dmt.suggest.drafts` (pre-annotations) and :mod:`~dmt.suggest.suggest` (the command's work).
"""
