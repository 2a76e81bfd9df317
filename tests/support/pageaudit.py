"""What a browser would act on in a page we serve: scripts, event handlers, and links
that run code.  The injection tests assert that this list stays empty."""

from __future__ import annotations

from html.parser import HTMLParser


class PageAudit(HTMLParser):
    """Every element and attribute a browser would act on, from served HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dangers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "svg", "img"):
            self.dangers.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.dangers.append(f"{tag} {name}=")
            scheme = (value or "").strip().lower().split(":", 1)[0]
            if name in ("href", "src", "action") and scheme in ("javascript", "data", "vbscript"):
                self.dangers.append(f"{tag} {name}={value}")


def dangers_in(page: str) -> list[str]:
    audit = PageAudit()
    audit.feed(page)
    audit.close()
    return audit.dangers
