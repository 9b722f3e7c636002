"""Segmentation DMT: the stage runner, its data (sources, splits, per-member sets), step, inference and labelling.

``runner`` executes baselines, (mutual) phases and the oracle; ``inference`` predicts whole images
or sliding windows and scores mIoU; ``labelling`` is a phase's labelling pass and its thresholded
targets; ``steps`` the training step; ``panels`` the end-of-stage pictures.
"""
