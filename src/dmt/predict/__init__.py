"""What you do with a trained model file: ``dmt predict`` on your own images and ``dmt eval`` on a dataset.

``predict`` runs the model over image files (``inputs``), knowing what its outputs mean from
``meta`` (class names, colours, reading size), and writes what ``render`` draws. ``evaluate``
scores a model file on a dataset's test or val set. Imports ``run`` (a run's config), ``tasks``
(the inference functions) and below.
"""
