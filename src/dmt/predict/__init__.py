"""What you do with a trained model file: ``dmt predict``, ``dmt eval``, ``dmt export`` and ``dmt.load_model``.

One prediction path (``pipeline``: ``batches`` reads and batches, ``assemble`` reduces band by
band) serves ``predict`` (``dmt predict MODEL_FILE``), ``onnx_predict`` (``dmt predict
MODEL.onnx``) and ``model`` (the Python API's :class:`~dmt.predict.model.Model`); they differ only
in their ``scorers``. ``inputs`` finds the image files, ``meta`` says what the outputs mean (class
names, colours, reading size), ``outputs`` writes what ``render`` draws. ``evaluate`` scores a
model file on a dataset's test or val set. ``export`` writes ONNX and TorchScript graphs,
``verify`` checks them against PyTorch, ``exported`` holds their metadata and ONNX Runtime
sessions. Imports ``run`` (a run's config), ``tasks`` (the inference functions) and below.
"""
