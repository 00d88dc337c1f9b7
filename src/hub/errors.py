"""The hub's refusals of a request (an institute command, an API call), with their words in the
catalogue (``hub.error.*`` of :mod:`hub.messages`).

Each is also the core leaf of its kind (:mod:`core.errors`), so the API maps it to its status as
before; ``str(error)`` is the English text (the API's ``detail``), :meth:`HubError.message` the
text in a language (the command line prints it in the user's).
"""

from __future__ import annotations

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.refusals import Refusal
from hub import messages  # noqa: F401 - registers the texts


class HubError(Refusal):
    """A hub operation that cannot be done: ``code`` and ``params`` give its message."""


class HubNotFound(HubError, NotFoundError):
    """What the request names is not at the hub (a lab, a link)."""


class HubConflict(HubError, ConflictError):
    """The request clashes with what the hub holds (enrolled already, revoked, withdrawn)."""


class HubInvalid(HubError, InvalidInputError):
    """The input (an option, a file, a field) cannot be used."""
