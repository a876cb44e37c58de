"""FastAPI dependencies, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from users_api.db import session_scope
from users_api.schemas import MAX_ID

SessionDep = Annotated[AsyncSession, Depends(session_scope)]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id")]
