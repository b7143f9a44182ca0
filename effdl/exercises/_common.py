"""What every chapter's checks share: how a failed property is reported."""
from __future__ import annotations

from typing import NoReturn
from ..validation import Text, validate_params


@validate_params(message=Text())
def fail(message: str) -> NoReturn:
    """Report a failed property: ``AssertionError`` with a hint for the reader, never the answer."""
    raise AssertionError(message)
