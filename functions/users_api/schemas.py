"""Request and response bodies (pydantic v2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from users_api.models import EMAIL_MAX, NAME_MAX

MAX_ID = 2**63 - 1


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
# EmailStr returns email-validator's normalized form: the domain lower-cased, the local part
# kept as given (uniqueness ignores its case through the lower(email) index).
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX)]


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
