"""Annotation tools' formats (placeholder: the labelling-loop import work owns this file)."""
