"""What you do with a trained model file: ``dmt predict``, ``dmt eval``, ``dmt export`` and ``dmt.load_model``.

``predict`` runs the model over image files (``inputs``), knowing what its outputs mean from
``meta`` (class names, colours, reading size), and writes what ``render`` draws through
``outputs``. ``evaluate`` scores a model file on a dataset's test or val set. ``model`` is the
Python API's :class:`~dmt.predict.model.Model`. ``export`` writes ONNX and TorchScript graphs,
``verify`` checks them against PyTorch, ``exported`` (metadata, ONNX Runtime sessions) and
``onnx_predict`` (``dmt predict MODEL.onnx``) import no torch. Imports ``run`` (a run's config),
``tasks`` (the inference functions) and below.
"""
