"""Request and response bodies (pydantic v2)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from users_api.models import EMAIL_MAX, NAME_MAX

MAX_ID = 2**63 - 1


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate (JSON's "\ud800") has no UTF-8
    # form: reject both here, so every backend answers the same 422 instead of one a 500.
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


StorableText = AfterValidator(_storable)
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    StorableText,
]
# EmailStr returns email-validator's normalized form: the domain lower-cased, the local part
# kept as given (uniqueness ignores case through models.email_key).
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX), StorableText]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email


class UserUpdate(BaseModel):
    """Any subset of the fields. A field may be left out but not set to null."""

    model_config = ConfigDict(extra="forbid")

    # Not Optional: an explicit null is a 422, an absent field means "unchanged". The None
    # default is never validated (pydantic skips defaults) and changes() drops unset fields,
    # so no None reaches a caller: the ignores silence only the default's declared type.
    name: Name = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(ge=1, le=MAX_ID)
    name: str
    email: str
    created_at: datetime
    updated_at: datetime


class Health(BaseModel):
    status: str
    database: str


class Message(BaseModel):
    message: str


class ErrorDetail(BaseModel):
    """Every error body: FastAPI's shape, `detail` a string (or a list for 422)."""

    detail: str
