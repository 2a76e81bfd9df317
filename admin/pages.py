"""HTML of the admin pages: server-rendered forms, no JavaScript.

Rendered from the Jinja2 templates in ``admin/templates`` (autoescaped: every
text, attribute and submitted value), which extend the public pages' layout.
Every POST form carries the CSRF token.  A form that failed shows what was
typed and the error next to the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from actors.pages import templates
from federation.vocab import KINDS, UNIT_LABELS, UNITS, format_amount

KIND_LABELS = {"offer": "Offer", "need": "Need", "solidarity": "Solidarity request"}
PROPOSAL_INPUTS = (
    "title",
    "details",
    "quantity",
    "unit",
    "unit_label",
    "price",
    "currency",
    "deadline",
)
MORE_INPUTS = ("tags", "resource")


@dataclass(slots=True)
class Forms:
    """What a failed form sent back: its values and its errors (field -> message;
    the field "" for an error of the whole form)."""

    csrf: str = ""
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    values: dict[str, Mapping[str, str]] = field(default_factory=dict)

    def value(self, form: str, name: str, default: object = "") -> str:
        sent = self.values.get(form)
        if sent is not None and name in sent:
            return str(sent[name])
        return "" if default is None else str(default)

    def field_error(self, form: str, name: str) -> str | None:
        """The error of the field ``name`` of ``form``, if it has one."""
        return self.errors.get(form, {}).get(name)

    def top_error(self, form: str, fields: tuple[str, ...]) -> str:
        """The errors of ``form`` that name none of the form's fields."""
        errors = self.errors.get(form, {})
        return " ".join(
            f"{name}: {message}" if name else message
            for name, message in errors.items()
            if name not in fields
        )

    def fail(self, form: str, errors: Mapping[str, str], values: Mapping[str, str]) -> None:
        """Remember a failed ``form``: its errors, and what was typed (never the token)."""
        self.errors[form] = dict(errors)
        self.values[form] = {k: v for k, v in values.items() if k not in ("csrf", "form")}


def amount(value: str | None, unit: str | None, currency: str | None = None) -> str:
    return format_amount(Decimal(value), unit or "one", currency) if value else "-"


def edit_link(uri: str) -> str:
    return f"/admin/edit?uri={quote(uri, safe='')}"


PAGES = templates("admin")
PAGES.globals.update(
    kinds=KINDS,
    kind_labels=KIND_LABELS,
    units=sorted(UNITS),
    unit_labels=UNIT_LABELS,
    proposal_inputs=PROPOSAL_INPUTS + MORE_INPUTS,
    edit_link=edit_link,
)


def render(name: str, title: str, **context: Any) -> str:
    return PAGES.get_template(f"admin/{name}.html").render(title=title, alternate=None, **context)


def login_page(
    csrf: str, error: str = "", has_password: bool = True, coop: str = "", handle: str = ""
) -> str:
    title = f"Admin login · {coop}" if coop else "Admin login"
    return render(
        "login",
        title,
        csrf=csrf,
        error=error,
        has_password=has_password,
        coop=coop,
        handle=handle,
    )


def message_page(title: str, text: str, link: str = "/admin", link_text: str = "Back") -> str:
    return render("message", title, text=text, link=link, link_text=link_text)


def edit_page(forms: Forms, current: Mapping[str, Any], error: str = "") -> str:
    return render("edit", f"Edit {current['title']}", forms=forms, current=current, error=error)
