"""Who may see what: the role rules, in one place.

- company `viewer`: its own company's hierarchy, signals, latest values, KPIs and connections;
- company `operator`: the viewer's rights plus writes to its own writable signals;
- `park` (the park operator): only what `orchestrator.sharing.park_view` publishes, benchmarks, the
  list of companies with their policies and connection up/down; never raw signals or hierarchy;
- `admin`: everything.

Order of checks, so that answers leak nothing: the role first (403, whatever the target), then the
target (404 for what does not exist *and* for another company's things).
"""

from __future__ import annotations

from exporters.http.auth import Principal
from exporters.http.context import Context
from exporters.http.errors import forbidden, not_found
from exporters.http.tokens import Role
from models.park import AssetRef, SignalRef

READERS: frozenset[Role] = frozenset({"viewer", "operator", "admin"})  # company data
WRITERS: frozenset[Role] = frozenset({"operator", "admin"})
PARK_VIEWERS: frozenset[Role] = frozenset({"park", "admin"})


def require_role(principal: Principal, roles: frozenset[Role]) -> None:
    """403 unless the caller's role is one of `roles`."""
    if principal.role not in roles:
        raise forbidden()


def visible(principal: Principal, company: str) -> bool:
    """Whether the caller may know `company`'s own data exists."""
    return not principal.is_company or principal.company == company


def visible_companies(context: Context, principal: Principal) -> list[str]:
    """The companies the caller may list: its own, or all of them for the park and admins."""
    return [c for c in context.park.companies if visible(principal, c)]


def company(context: Context, principal: Principal, company_id: str) -> str:
    """A company the caller may name (404 otherwise); no role check."""
    if company_id not in context.park.companies or not visible(principal, company_id):
        raise not_found()
    return company_id


def company_data(context: Context, principal: Principal, company_id: str) -> str:
    """A company whose own data (hierarchy, signals, KPIs) the caller may read."""
    require_role(principal, READERS)
    return company(context, principal, company_id)


def asset(context: Context, principal: Principal, path: str, roles: frozenset[Role] = READERS) -> AssetRef:
    """An asset the caller may read (or, with WRITERS, write to), by its path."""
    require_role(principal, roles)
    found = context.assets.get(path)
    if found is None or not visible(principal, found.company):
        raise not_found()
    return found


def signal(context: Context, found: AssetRef, name: str) -> SignalRef:
    """One signal of an asset the caller already may see."""
    for s in context.signals.get(found.path, []):
        if s.name == name:
            return s
    raise not_found()
