"""A backend that answers instantly with the prepared input: for wiring checks and benchmarks."""

from __future__ import annotations

import random

from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.providers.base import Provider, Reporter


class EchoProvider(Provider):
    """Returns the input image unchanged (``samples`` copies) with a seed; costs no GPU."""

    type_name = "echo"
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.SAMPLES
                    | Capability.NEGATIVE_PROMPT | Capability.STEPS | Capability.CFG)
    size_rules = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=512 * 512,
                           input_format="JPEG")  # sent back as it came, like a photo

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        reporter.accept()
        seed = job.params.seed if job.params.seed is not None else random.randrange(2**32)
        return GenerationResult(images=(job.image,) * job.params.samples, seed=seed)

    async def health(self) -> str:
        return "ok (echo backend: returns the input)"
