"""The one error tree of the project.

Every failure that can reach a user is a ``BotError``; each carries ``msg``, a message id with
its arguments (``bot.i18n``), and ``user_message``, that one sentence rendered for the current
locale. An error raised with a plain sentence (an operator's text, not in the catalogues) shows
that sentence.
Adapters turn errors into messages in exactly one place.

::

    BotError
    ├── ConfigError                 bad configuration; stops start-up, names the key
    ├── StorageUnavailable          the database cannot be reached or refused the login
    ├── UserError                   the request was refused before anything was charged
    │   ├── OptionError             an unknown or out-of-range option
    │   ├── ImageError              not an image, too large, corrupt
    │   ├── PolicyError             the chat's policy refuses it (disabled, banned word, ...)
    │   ├── InsufficientCredits     the user's balance is below the price
    │   ├── QueueFull               too many jobs queued (globally or for this user)
    │   ├── NotAllowed              an admin/owner command from someone who is not one
    │   └── PaymentRefused          a purchase, checkout or refund that cannot go ahead
    ├── JobCancelled                the requester cancelled the job (refunded)
    ├── EventHandled                the platform event asking for a job was handled before
    │                               (a redelivery): there is nothing to tell anyone
    ├── FetchError                  an outside URL could not be downloaded
    │   ├── UnsafeURL               refused: not http(s), a private address, too many redirects
    │   └── FetchTooLarge           the body passed the byte cap
    ├── DeliveryRefused             the platform did not take a finished result (retried, or
    │                               refunded at the delivery deadline)
    └── ProviderError               the backend failed (the job is refunded)
        ├── ProviderAuthError       the operator's key was refused
        ├── ProviderCreditsError    the operator's account at the provider is empty
        ├── RateLimited             too many requests (``retry_after`` seconds)
        ├── InvalidProviderRequest  the provider refused the parameters
        ├── ContentFiltered         the provider's safety filter blocked the result
        ├── ProviderUnavailable     unreachable, 5xx, maintenance
        ├── ProviderTimeout         no answer within the job timeout
        └── JobFailed               the provider accepted the job and it failed
"""

from __future__ import annotations

from typing import ClassVar

from bot.i18n import DEFAULT, Msg, current_locale, render


class BotError(Exception):
    """Root of every error this project raises on purpose."""

    message_id: ClassVar[str] = "error-generic"
    default_message: ClassVar[str] = render("error-generic", DEFAULT)

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.default_message = render(cls.message_id, DEFAULT)

    def __init__(self, message: str | None = None, *, msg: Msg | None = None) -> None:
        if msg is None and not message:
            msg = Msg(self.message_id)
        self.msg = msg
        super().__init__(message or (msg.render(DEFAULT) if msg else ""))

    @property
    def user_message(self) -> str:
        """One sentence that is safe to show to the user, in the current locale."""
        return self.msg.render() if self.msg else str(self)


class ConfigError(BotError):
    """The configuration is invalid; the message names the key."""


class StorageUnavailable(BotError):
    """The database cannot be reached or refused the login; the message never holds a password."""

    message_id = "error-storage-unavailable"

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(message)
        # For the operator (the CLI, the log): which database and why; users get the message.
        self.detail = detail or str(self)


class UserError(BotError):
    """A request refused before any credit was reserved."""


class OptionError(UserError):
    """An unknown, malformed or out-of-range option."""


class ImageError(UserError):
    """The input is not a usable image."""


class PolicyError(UserError):
    """The chat's moderation policy refuses the request."""


class InsufficientCredits(UserError):
    """The user cannot afford the request."""

    def __init__(self, price: int, balance: int) -> None:
        self.price = price
        self.balance = balance
        super().__init__(msg=Msg("error-insufficient-credits", {"count": price,
                                                                  "balance": balance}))


class QueueFull(UserError):
    """The queue is at its limit."""

    message_id = "error-queue-full"


class NotAllowed(UserError):
    """The caller lacks the rights for this command."""

    message_id = "error-not-allowed"


class PaymentRefused(UserError):
    """A purchase, pre-checkout or refund refused; nothing was charged or moved."""

    message_id = "error-payment-refused"


class JobCancelled(BotError):
    """The job was cancelled by its requester."""

    message_id = "error-cancelled"


class EventHandled(BotError):
    """A redelivered platform event: its job was made when it first came."""


class FetchError(BotError):
    """An outside URL (a result, an attachment) could not be downloaded."""

    message_id = "error-fetch"


class UnsafeURL(FetchError):
    """The URL was refused before any request: its scheme, its address or its redirects."""


class FetchTooLarge(FetchError):
    """The body went past the byte cap; the download stopped there."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        super().__init__(msg=Msg("error-fetch-too-large", {"mb": f"{cap / (1024 * 1024):.0f}"}))


class DeliveryRefused(BotError):
    """The platform refused a result: for now (``retry_after``), or for good (``permanent``:
    the chat is gone, the bot is blocked, the file is refused)."""

    message_id = "error-delivery-refused"

    def __init__(self, message: str | None = None, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class ProviderError(BotError):
    """A backend failure; the job is refunded.

    ``accepted`` tells whether the backend had taken the job when it failed: a pool moves a
    job that failed before acceptance to its next member.
    """

    message_id = "error-provider"

    def __init__(self, message: str | None = None, *, msg: Msg | None = None,
                 accepted: bool = False) -> None:
        super().__init__(message, msg=msg)
        self.accepted = accepted

    @property
    def user_message(self) -> str:
        """The message in the reader's language; a plain sentence only to English readers."""
        # The bot words every backend failure as a message id (a backend's own words ride in it
        # as an untranslated parameter); a plain sentence is an operator's summary (a pool's
        # health check), so other readers get this kind of failure as the catalogue says it.
        if self.msg is None and current_locale.get() != DEFAULT:
            return render(self.message_id)
        return super().user_message


class ProviderAuthError(ProviderError):
    message_id = "error-provider-auth"


class ProviderCreditsError(ProviderError):
    message_id = "error-provider-credits"


class RateLimited(ProviderError):
    message_id = "error-rate-limited"

    def __init__(
        self, message: str | None = None, *, msg: Msg | None = None,
        retry_after: float | None = None, accepted: bool = False,
    ) -> None:
        super().__init__(message, msg=msg, accepted=accepted)
        self.retry_after = retry_after


class InvalidProviderRequest(ProviderError):
    message_id = "error-invalid-request"


class ContentFiltered(ProviderError):
    message_id = "error-content-filtered"


class ProviderUnavailable(ProviderError):
    message_id = "error-provider-unavailable"


class ProviderTimeout(ProviderError):
    message_id = "error-provider-timeout"


class JobFailed(ProviderError):
    message_id = "error-job-failed"
