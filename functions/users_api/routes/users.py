"""The /users resource."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from users_api import users_repo
from users_api.auth import AUTH_ERRORS, ReadAccess, WriteAccess
from users_api.body import JsonRoute
from users_api.deps import SessionDep, UserId
from users_api.models import User
from users_api.schemas import MAX_ID, ErrorDetail, Message, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"], route_class=JsonRoute)

# The shape APIRouter takes for `responses`.
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "User not found"}}
CONFLICT: Responses = {409: {"model": ErrorDetail, "description": "Email already registered"}}


def _found(user: User | None) -> User:
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    return user


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={**CONFLICT, **AUTH_ERRORS},
    dependencies=[WriteAccess],
)
async def create_user(
    body: UserCreate, session: SessionDep, request: Request, response: Response
) -> User:
    user = await users_repo.create_user(session, name=body.name, email=body.email)
    response.headers["Location"] = f"{request.scope.get('root_path', '')}/users/{user.id}"
    return user


@router.get("", response_model=list[UserOut], responses=AUTH_ERRORS, dependencies=[ReadAccess])
async def list_users(
    session: SessionDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[User]:
    users = list(await users_repo.list_users(session, after_id=after_id, limit=limit))
    if len(users) > limit:
        users = users[:limit]
        root = request.scope.get("root_path", "")
        response.headers["Link"] = (
            f'<{root}/users?limit={limit}&after_id={users[-1].id}>; rel="next"'
        )
    return users


@router.get(
    "/{user_id}",
    response_model=UserOut,
    responses={**NOT_FOUND, **AUTH_ERRORS},
    dependencies=[ReadAccess],
)
async def get_user(user_id: UserId, session: SessionDep) -> User:
    return _found(await users_repo.get_user(session, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS},
    dependencies=[WriteAccess],
)
async def update_user(user_id: UserId, body: UserUpdate, session: SessionDep) -> User:
    return _found(await users_repo.update_user(session, user_id, body.changes()))


@router.delete(
    "/{user_id}",
    response_model=Message,
    responses={**NOT_FOUND, **AUTH_ERRORS},
    dependencies=[WriteAccess],
)
async def delete_user(user_id: UserId, session: SessionDep) -> Message:
    if not await users_repo.delete_user(session, user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    return Message(message="User deleted")
