"""HTML of the admin pages: server-rendered forms, no JavaScript.

Pure functions of the data ``admin.routes`` gathers.  Every text, attribute and
submitted value is escaped here; every POST form carries the CSRF token.  A
form that failed shows what was typed and the error next to the field.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from actors.pages import STYLE
from federation.vocab import UNIT_LABELS, UNITS, format_amount

ADMIN_STYLE = """
form{margin:.4rem 0}label{display:block;font-weight:600;margin-top:.5rem}
input,select,textarea{font:inherit;width:100%;box-sizing:border-box;padding:.45rem;
border:1px solid #888;border-radius:.3rem;background:#fff}textarea{min-height:4rem}
button{font:inherit;padding:.45rem .9rem;margin:.4rem .4rem 0 0;border-radius:.3rem;
border:1px solid #2f6f4f;background:#2f6f4f;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#2f6f4f}.inline{display:inline}
.error{color:#a4161a;font-weight:600}.flash{background:#e3f4e8;padding:.6rem;border-radius:.4rem}
.state{text-transform:uppercase}section{margin:1.5rem 0}details{margin:.5rem 0}
summary{cursor:pointer;font-weight:600;color:#1f5f3f}
"""
KIND_LABELS = {"offer": "Offer", "need": "Need", "solidarity": "Solidarity request"}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


@dataclass(slots=True)
class Forms:
    """What a failed form sent back: its values and its error (field, message)."""

    csrf: str = ""
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)
    values: dict[str, Mapping[str, str]] = field(default_factory=dict)

    def value(self, form: str, name: str, default: object = "") -> str:
        sent = self.values.get(form)
        if sent is not None and name in sent:
            return str(sent[name])
        return "" if default is None else str(default)

    def top_error(self, form: str, fields: tuple[str, ...]) -> str:
        """The error of ``form`` when it names none of the form's fields."""
        error = self.errors.get(form)
        if error is None or error[0] in fields:
            return ""
        text = f"{error[0]}: {error[1]}" if error[0] else error[1]
        return f'<p class="error" id="{esc(form)}-error" role="alert">{esc(text)}</p>'


def page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{esc(title)}</title><style>{STYLE}{ADMIN_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'


def post_form(forms: Forms, action: str, form_id: str, inner: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<form method="post" action="{esc(action)}" id="{esc(form_id)}"{klass}>'
        f"{hidden('csrf', forms.csrf)}{hidden('form', form_id)}{inner}</form>"
    )


def input_field(
    forms: Forms,
    form: str,
    name: str,
    label: str,
    default: object = "",
    *,
    kind: str = "text",
    attrs: str = "",
) -> str:
    fid = f"{form}-{name}"
    error = forms.errors.get(form)
    message = error[1] if error is not None and error[0] == name else None
    mine = message is not None
    aria = f' aria-invalid="true" aria-describedby="{esc(fid)}-error"' if mine else ""
    value = forms.value(form, name, default)
    if kind == "textarea":
        control = f'<textarea id="{esc(fid)}" name="{name}"{aria}{attrs}>{esc(value)}</textarea>'
    elif kind == "select-unit":
        options = "".join(
            f'<option value="{u}"{" selected" if u == (value or "one") else ""}>'
            f"{esc(UNIT_LABELS.get(u) or 'pieces or money')} ({u})</option>"
            for u in sorted(UNITS)
        )
        control = f'<select id="{esc(fid)}" name="{name}"{aria}>{options}</select>'
    else:
        control = (
            f'<input id="{esc(fid)}" name="{name}" type="{kind}" value="{esc(value)}"{aria}{attrs}>'
        )
    note = f'<p class="error" id="{esc(fid)}-error">{esc(message)}</p>' if mine else ""
    return f'<label for="{esc(fid)}">{esc(label)}</label>{control}{note}'


def button(label: str, *, name: str = "", value: str = "", secondary: bool = False) -> str:
    attrs = f' name="{esc(name)}" value="{esc(value)}"' if name else ""
    cls = ' class="secondary"' if secondary else ""
    return f'<button type="submit"{attrs}{cls}>{esc(label)}</button>'


PROPOSAL_FIELDS = ("title", "details", "quantity", "unit", "price", "currency", "deadline")
MORE_FIELDS = ("tags", "resource")


def proposal_fields(forms: Forms, form: str, kind: str, current: Mapping[str, Any]) -> str:
    """The inputs of a proposal: empty to publish one, filled with ``current`` to edit."""
    decimal = ' inputmode="decimal" autocomplete="off"'
    solidarity = kind == "solidarity"
    parts = [
        input_field(forms, form, "title", "Title", current.get("title"), attrs=" required"),
        input_field(forms, form, "details", "Details", current.get("details"), kind="textarea"),
        input_field(
            forms,
            form,
            "quantity",
            "Target amount" if solidarity else "Quantity (optional)",
            current.get("quantity"),
            attrs=decimal + (" required" if solidarity else ""),
        ),
        input_field(forms, form, "unit", "Unit", current.get("unit"), kind="select-unit"),
    ]
    if not solidarity:
        parts.append(
            input_field(
                forms,
                form,
                "price",
                "Price (empty: negotiable)",
                current.get("price"),
                attrs=decimal,
            )
        )
    parts += [
        input_field(forms, form, "currency", "Currency", current.get("currency") or "EUR"),
        input_field(
            forms,
            form,
            "deadline",
            "Deadline (UTC)" if solidarity else "Deadline (UTC, optional)",
            current.get("deadline"),
            kind="datetime-local",
            attrs=' step="1"' + (" required" if solidarity else ""),
        ),
        input_field(forms, form, "tags", "Tags (words separated by spaces)", current.get("tags")),
    ]
    if not solidarity:
        parts.append(
            input_field(
                forms, form, "resource", "Resource (a word such as flour)", current.get("resource")
            )
        )
    return forms.top_error(form, PROPOSAL_FIELDS + MORE_FIELDS) + "".join(parts)


def amount(value: str | None, unit: str | None, currency: str | None = None) -> str:
    return format_amount(Decimal(value), unit or "one", currency) if value else "-"


def login_page(csrf: str, error: str = "", has_password: bool = True) -> str:
    hint = (
        ""
        if has_password
        else "<p>No admin password is set yet: run <code>coopfed password</code> on the server, "
        "or log in with an API token (<code>coopfed token create NAME</code>).</p>"
    )
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        "<header><h1>Admin login</h1></header><main>"
        f"{alert}{hint}"
        '<form method="post" action="/admin/login">'
        f"{hidden('csrf', csrf)}"
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        '<label for="token">or an API token</label>'
        '<input id="token" name="token" type="password" autocomplete="off">'
        f"{button('Log in')}</form></main>"
    )
    return page("Admin login", body)


def message_page(title: str, text: str, link: str = "/admin", link_text: str = "Back") -> str:
    return page(
        title,
        f'<header><h1>{esc(title)}</h1></header><main><p role="alert">{esc(text)}</p>'
        f'<p><a href="{esc(link)}">{esc(link_text)}</a></p></main>',
    )


def edit_page(forms: Forms, current: Mapping[str, Any], error: str = "") -> str:
    form = "edit"
    inner = (
        hidden("uri", current["uri"])
        + proposal_fields(forms, form, current["kind"], current)
        + button("Save")
    )
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        f"<header><h1>Edit: {esc(current['title'])}</h1>"
        f'<p><a href="/admin">Back to the admin page</a></p></header><main>{alert}'
        f"{post_form(forms, '/admin/proposals/update', form, inner)}</main>"
    )
    return page(f"Edit {current['title']}", body)


def edit_link(uri: str) -> str:
    return f"/admin/edit?uri={quote(uri, safe='')}"
