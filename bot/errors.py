"""The one error tree of the project.

Every failure that can reach a user is a ``BotError``; each carries ``user_message``, one
sentence an adapter can show as-is. Adapters turn errors into messages in exactly one place.

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


class BotError(Exception):
    """Root of every error this project raises on purpose."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def user_message(self) -> str:
        """One sentence that is safe to show to the user."""
        return str(self)


class ConfigError(BotError):
    """The configuration is invalid; the message names the key."""


class StorageUnavailable(BotError):
    """The database cannot be reached or refused the login; the message never holds a password."""

    default_message = "The bot's database is temporarily unavailable; please try again later."

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
        super().__init__(
            f"This costs {price} credit{'s' if price != 1 else ''} and your balance is {balance}."
        )


class QueueFull(UserError):
    """The queue is at its limit."""

    default_message = "The bot is busy right now; please try again in a minute."


class NotAllowed(UserError):
    """The caller lacks the rights for this command."""

    default_message = "Only an admin can do that."


class PaymentRefused(UserError):
    """A purchase, pre-checkout or refund refused; nothing was charged or moved."""

    default_message = "Buying credits is not offered here."


class JobCancelled(BotError):
    """The job was cancelled by its requester."""

    default_message = "Cancelled."


class FetchError(BotError):
    """An outside URL (a result, an attachment) could not be downloaded."""

    default_message = "The image could not be downloaded."


class UnsafeURL(FetchError):
    """The URL was refused before any request: its scheme, its address or its redirects."""


class FetchTooLarge(FetchError):
    """The body went past the byte cap; the download stopped there."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        super().__init__(f"The image is larger than the {cap / (1024 * 1024):.0f} MB limit.")


class DeliveryRefused(BotError):
    """The platform refused a result: for now (``retry_after``), or for good (``permanent``:
    the chat is gone, the bot is blocked, the file is refused)."""

    default_message = "Your image was made, but I could not send it here."

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

    default_message = "The image service failed."

    def __init__(self, message: str | None = None, *, accepted: bool = False) -> None:
        super().__init__(message)
        self.accepted = accepted


class ProviderAuthError(ProviderError):
    default_message = "The image service refused the bot's key; the operator has to fix it."


class ProviderCreditsError(ProviderError):
    default_message = "The image service account is out of credits; the operator has to top it up."


class RateLimited(ProviderError):
    default_message = "The image service is rate limiting the bot; please try again shortly."

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None,
        accepted: bool = False,
    ) -> None:
        super().__init__(message, accepted=accepted)
        self.retry_after = retry_after


class InvalidProviderRequest(ProviderError):
    default_message = "The image service rejected these settings."


class ContentFiltered(ProviderError):
    default_message = "The image service's safety filter blocked this result."


class ProviderUnavailable(ProviderError):
    default_message = "The image service is unavailable right now; please try again later."


class ProviderTimeout(ProviderError):
    default_message = "The image service took too long."


class JobFailed(ProviderError):
    default_message = "The image service could not finish this image."
