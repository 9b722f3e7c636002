"""The two tasks, segmentation and classification, each a runner of a plan's stages, and what both share.

``plan`` turns a config into stages (baselines, phases with their teachers, oracle) and members;
``context`` is what a stage runner is handed (config, the stage's folders, device, logging);
``training`` trains one stage resumably; ``stats`` and ``panels`` are the statistics and pictures
of a stage. ``segmentation/`` and ``classification/`` hold each task's data, steps, inference and
panels. Imports ``engine``, ``data``, ``demo``, ``models``, ``method`` and ``config``; never ``run``.
"""
