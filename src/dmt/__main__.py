"""``python -m dmt``: what torchrun starts (``torchrun --nproc-per-node N -m dmt run ...``)."""

import sys

from dmt.cli.main import main

sys.exit(main())
