"""After an admin action: the page the browser goes back to, and the notice that page shows."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi.responses import RedirectResponse

from dcp.web.context import Page, local_path

NOTICES = frozenset(
    {
        "provider_approved",
        "provider_suspended",
        "renter_suspended",
        "renter_active",
        "credited",
        "credit_repeat",
        "withdrawal_approved",
        "withdrawal_paid",
        "withdrawal_rejected",
    }
)


def back_with_notice(page: Page, form: dict[str, str], *, default: str, notice: str) -> RedirectResponse:
    """Redirect (303) to the form's ``next`` page on this site, or ``default``, telling it what was done."""
    target = urlsplit(local_path(form.get("next"), default))
    query = [(name, value) for name, value in parse_qsl(target.query) if name != "done"]
    query.append(("done", notice))
    return page.redirect(f"{target.path}?{urlencode(query)}")


def notice(page: Page) -> str | None:
    """The message for what the last action did, when the URL names one of the known outcomes."""
    done = page.request.query_params.get("done")
    return page.t(f"admin.done_{done}") if done in NOTICES else None
