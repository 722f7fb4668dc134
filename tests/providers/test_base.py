"""What ``Provider.generate`` does for every backend."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import ProviderUnavailable
from bot.models import GenerationResult, ProviderJob
from bot.providers.base import Provider, ProviderSettings, Reporter
from tests.providers.helpers import job_error


class _Failing(Provider):
    """Fails the way an HTTP helper does: with an error that does not know about acceptance."""

    type_name = "failing"

    def __init__(self, http: httpx.AsyncClient, *, accept_first: bool) -> None:
        super().__init__("failing", ProviderSettings(type="failing"), http)
        self.accept_first = accept_first

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        if self.accept_first:
            reporter.accept()
        raise ProviderUnavailable()


@pytest.mark.parametrize("accept_first", [False, True])
async def test_a_failure_after_acceptance_is_accepted(http: httpx.AsyncClient,
                                                      accept_first: bool) -> None:
    error = await job_error(_Failing(http, accept_first=accept_first))
    assert isinstance(error, ProviderUnavailable) and error.accepted is accept_first
