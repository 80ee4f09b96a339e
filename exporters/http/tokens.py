"""API tokens: random 256-bit secrets, stored only as their SHA-256 digest (table `api_token`).

Why SHA-256 and not argon2/bcrypt: slow, salted hashes protect *low-entropy* secrets (passwords)
against offline guessing. A token here is 32 bytes from `secrets` (256 bits), so inverting its
digest is as hard as guessing the token itself; a fast digest then loses nothing, lets the store
look a token up by an indexed column (no per-row verify loop) and costs microseconds per request
instead of the ~50 ms an argon2 verify would add to every API call. GitHub and PyPI tokens are
stored the same way. The plain token is shown once, at creation, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast, get_args

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, select

from models.park import Park

Role = Literal["viewer", "operator", "park", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
COMPANY_ROLES: frozenset[Role] = frozenset({"viewer", "operator"})
PREFIX = "plk_"  # lets secret scanners and humans recognise a parklink token
LAST_USED_EVERY = timedelta(seconds=60)  # a write per request would turn every read into a write


def _now() -> datetime:
    return datetime.now(UTC)


class ApiTokenRow(SQLModel, table=True):
    """One API token: its digest, role and company; revoked tokens are kept for the audit trail."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=100)
    hash: str = Field(index=True, unique=True, max_length=64)  # SHA-256 hex of the token
    role: str = Field(max_length=16)
    company: str | None = Field(default=None, max_length=64)  # for viewer and operator only
    created: datetime = Field(default_factory=_now)
    last_used: datetime | None = None
    revoked: datetime | None = None  # when it was revoked; None while it is valid


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What an authenticated request knows about its token (never the secret)."""

    id: int
    name: str
    role: Role
    company: str | None
    created: datetime
    last_used: datetime | None
    revoked: datetime | None


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_table(db: Engine) -> None:
    """Create `api_token` if it is missing (the token store may be its own database)."""
    SQLModel.metadata.create_all(db, tables=[ApiTokenRow.__table__])  # type: ignore[attr-defined]


def _check(role: str, company: str | None) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    if role in COMPANY_ROLES and not company:
        raise ValueError(f"a {role} token needs a company")
    if role not in COMPANY_ROLES and company:
        raise ValueError(f"a {role} token belongs to the park, not to a company")
    return role  # narrowed to Role by the membership test


def create_token(db_engine: Engine, role: str, company: str | None = None, name: str = "") -> str:
    """Create a token and return it in plain text; this is the only time it can be seen."""
    checked = _check(role, company)
    token = PREFIX + secrets.token_urlsafe(32)
    ensure_table(db_engine)
    with Session(db_engine) as session:
        label = name or (f"{company} {checked}" if company else checked)
        session.add(ApiTokenRow(name=label, hash=hash_token(token), role=checked, company=company))
        session.commit()
    return token


def _info(row: ApiTokenRow) -> TokenInfo:
    assert row.id is not None
    return TokenInfo(
        row.id, row.name, cast(Role, row.role), row.company, row.created, row.last_used, row.revoked
    )


def list_tokens(db_engine: Engine) -> list[TokenInfo]:
    """Every token (revoked ones too), oldest first; digests are not returned."""
    ensure_table(db_engine)
    with Session(db_engine) as session:
        return [_info(row) for row in session.exec(select(ApiTokenRow).order_by(ApiTokenRow.id))]  # type: ignore[arg-type]


def revoke_token(db_engine: Engine, token_id: int) -> bool:
    """Revoke a token by id; False when there is no such valid token."""
    ensure_table(db_engine)
    with Session(db_engine) as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or row.revoked is not None:
            return False
        row.revoked = _now()
        session.add(row)
        session.commit()
        return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def authenticate(db_engine: Engine, token: str) -> TokenInfo | None:
    """The valid (not revoked) token with this secret, or None; records when it was last used."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None  # not one of ours: no database round trip for junk
    digest = hash_token(token)
    with Session(db_engine) as session:
        row = session.exec(select(ApiTokenRow).where(ApiTokenRow.hash == digest)).first()
        if row is None or row.revoked is not None:
            return None
        now = _now()
        if row.last_used is None or now - _aware(row.last_used) > LAST_USED_EVERY:
            row.last_used = now
            session.add(row)
            session.commit()
            session.refresh(row)
        return _info(row)


def demo_tokens(db_engine: Engine, park: Park) -> dict[str, str]:
    """One token per role for `parklink demo`: park operator, admin, and the first company's two."""
    first = next(iter(park.companies))
    return {
        "park operator": create_token(db_engine, "park", name="demo park operator"),
        "admin": create_token(db_engine, "admin", name="demo admin"),
        f"{first} viewer": create_token(db_engine, "viewer", first, name=f"demo {first} viewer"),
        f"{first} operator": create_token(db_engine, "operator", first, name=f"demo {first} operator"),
    }
