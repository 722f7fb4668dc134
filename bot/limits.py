"""The numbers that bound a request, defined once for the config, the parser, the policy,
the providers' rules and both adapters' controls."""

from __future__ import annotations

MIN_STEPS, MAX_STEPS = 1, 150
MAX_CFG = 30.0
MAX_SEED = 2**32 - 1
MIN_SIDE, MAX_SIDE = 64, 4096
MAX_SAMPLES = 4
# One press of a strength button, in the settings keyboard and on a result (Weaker/Stronger).
# 0.1 rather than 0.05: a result button pays for a new image, and a 0.05 change in denoising
# is hard to see; ten presses still cover the whole range from 0 to 1.
STRENGTH_STEP = 0.1
STEPS_STEP = 5  # one press of the settings keyboard's steps buttons
