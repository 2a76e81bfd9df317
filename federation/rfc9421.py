"""RFC 9421 mechanics: the RFC 8941 structured fields it uses, and the signature base.

Fediverse policy (which components must be covered, algorithms, clock windows, digests)
lives in `federation.httpsig`; this module only parses, serialises and builds bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import ascii_letters, ascii_lowercase, digits
from typing import NoReturn
from urllib.parse import SplitResult, urlsplit


class Token(str):
    """An RFC 8941 token (serialised bare, unlike a string)."""

    __slots__ = ()


BareItem = int | float | str | bytes | bool
Params = dict[str, BareItem]


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Params


@dataclass(frozen=True, slots=True)
class Member:
    """A dictionary member: a bare item or an inner list, with its parameters."""

    value: BareItem | tuple[Item, ...]
    params: Params


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """The first signature of a request: its label, covered components and parameters."""

    label: str
    components: tuple[str, ...]
    params: Params
    signature: bytes

    @property
    def serialized_params(self) -> str:
        return serialize_inner_list(self.components, self.params)


class StructuredFieldError(Exception):
    def __init__(self, detail: str, position: int | None = None) -> None:
        super().__init__(detail, position)
        self.detail = detail
        self.position = position

    def __str__(self) -> str:
        where = "" if self.position is None else f" at offset {self.position}"
        return f"{self.detail}{where}"


class ComponentError(Exception):
    """A covered component cannot be resolved: a ``missing`` header or an unsupported name."""

    def __init__(self, name: str, *, missing: bool) -> None:
        super().__init__(name, missing)
        self.name = name
        self.missing = missing

    def __str__(self) -> str:
        return f"{'missing' if self.missing else 'unsupported'} component {self.name!r}"


_KEY_FIRST = frozenset(ascii_lowercase + "*")
_KEY_CHARS = frozenset(ascii_lowercase + digits + "_-.*")
_TOKEN_FIRST = frozenset(ascii_letters + "*")
_TOKEN_CHARS = frozenset(ascii_letters + digits + "!#$%&'*+-.^_`|~:/")
_NUMBER = re.compile(r"-?([0-9]{1,15})(?:\.([0-9]{1,3}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an RFC 8941 dictionary (no Date or Display String items)."""
    return _Parser(text).dictionary()


def first_signature(signature_input: str, signature: str) -> SignatureInput:
    """The first label of ``Signature-Input`` and its value in ``Signature``."""
    inputs = parse_dictionary(signature_input)
    if not inputs:
        raise StructuredFieldError("empty Signature-Input")
    label, member = next(iter(inputs.items()))
    if not isinstance(member.value, tuple):
        raise StructuredFieldError(f"Signature-Input {label!r} is not an inner list")
    components: list[str] = []
    for item in member.value:
        if type(item.value) is not str or item.params:
            raise StructuredFieldError(f"unsupported component {item.value!r}")
        if item.value in components:
            raise StructuredFieldError(f"duplicate component {item.value!r}")
        components.append(item.value)
    found = parse_dictionary(signature).get(label)
    if found is None or not isinstance(found.value, bytes):
        raise StructuredFieldError(f"no byte-sequence Signature {label!r}")
    return SignatureInput(label, tuple(components), member.params, found.value)


def serialize_inner_list(items: Sequence[BareItem], params: Params) -> str:
    """E.g. ``("@method" "@target-uri");created=1;keyid="k"``. ValueError if unserialisable."""
    inner = " ".join(_serialize_bare(item) for item in items)
    return f"({inner}){''.join(_serialize_param(k, v) for k, v in params.items())}"


def signature_base(
    components: Sequence[str],
    serialized_params: str,
    *,
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
) -> bytes:
    """The RFC 9421 §2.5 signature base. ``headers``: lowercased names, trimmed values."""
    parts = urlsplit(target_uri)
    lines = []
    for name in components:
        if name.startswith("@"):
            value = _derived(name, method, target_uri, parts)
        elif (found := headers.get(name)) is not None:
            value = found
        else:
            raise ComponentError(name, missing=True)
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {serialized_params}')
    return "\n".join(lines).encode("utf-8", errors="surrogateescape")


def authority(parts: SplitResult) -> str:
    """Lowercased host, with the port only when not the scheme's default. ValueError: bad port."""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _derived(name: str, method: str, target_uri: str, parts: SplitResult) -> str:
    match name:
        case "@method":
            return method.upper()
        case "@target-uri":
            return target_uri
        case "@authority":
            try:
                return authority(parts)
            except ValueError:
                raise ComponentError(name, missing=True) from None
        case "@scheme":
            return parts.scheme.lower()
        case "@request-target":
            return request_target(parts)
        case "@path":
            return parts.path or "/"
        case "@query":
            return "?" + parts.query
    raise ComponentError(name, missing=False)


def _serialize_param(key: str, value: BareItem) -> str:
    return f";{key}" if value is True else f";{key}={_serialize_bare(value)}"


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return f":{base64.b64encode(value).decode('ascii')}:"
    if isinstance(value, Token):
        return str(value)
    if any(not " " <= char <= "~" for char in value):
        raise ValueError(f"cannot serialise {value!r} as a structured-field string")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _Parser:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip(" \t")
        self.pos = 0

    def _error(self, detail: str) -> NoReturn:
        raise StructuredFieldError(detail, self.pos)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip(self, allowed: str | frozenset[str]) -> None:
        while self._peek() and self._peek() in allowed:
            self.pos += 1

    def dictionary(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        while self.pos < len(self.text):
            key = self._key()
            if self._peek() == "=":
                self.pos += 1
                members[key] = self._member()
            else:
                members[key] = Member(True, self._params())
            self._skip(" \t")
            if self.pos == len(self.text):
                break
            if self._peek() != ",":
                self._error("expected ','")
            self.pos += 1
            self._skip(" \t")
            if self.pos == len(self.text):
                self._error("trailing ','")
        return members

    def _member(self) -> Member:
        if self._peek() != "(":
            return Member(self._bare_item(), self._params())
        self.pos += 1
        items: list[Item] = []
        while True:
            self._skip(" ")
            if self._peek() == ")":
                self.pos += 1
                return Member(tuple(items), self._params())
            items.append(Item(self._bare_item(), self._params()))
            if self._peek() not in (" ", ")"):
                self._error("expected ' ' or ')' in inner list")

    def _params(self) -> Params:
        params: Params = {}
        while self._peek() == ";":
            self.pos += 1
            self._skip(" ")
            key = self._key()
            value: BareItem = True
            if self._peek() == "=":
                self.pos += 1
                value = self._bare_item()
            params[key] = value
        return params

    def _key(self) -> str:
        start = self.pos
        if not self._peek() or self._peek() not in _KEY_FIRST:
            self._error("expected a key")
        self.pos += 1
        self._skip(_KEY_CHARS)
        return self.text[start : self.pos]

    def _bare_item(self) -> BareItem:
        char = self._peek()
        if char == "-" or (char and char in digits):
            return self._number()
        if char == '"':
            return self._string()
        if char == ":":
            return self._bytes()
        if char == "?":
            return self._boolean()
        if char and char in _TOKEN_FIRST:
            start = self.pos
            self.pos += 1
            self._skip(_TOKEN_CHARS)
            return Token(self.text[start : self.pos])
        self._error("expected an item")

    def _number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            self._error("expected a number")
        if match.group(2) is not None and len(match.group(1)) > 12:
            self._error("decimal too long")
        self.pos = match.end()
        return int(match.group(0)) if match.group(2) is None else float(match.group(0))

    def _string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                escaped = self._peek()
                if escaped not in ('"', "\\"):
                    self._error("bad escape in string")
                out.append(escaped)
                self.pos += 1
            elif " " <= char <= "~":
                out.append(char)
            else:
                self._error("non-printable character in string")
        self._error("unterminated string")

    def _bytes(self) -> bytes:
        end = self.text.find(":", self.pos + 1)
        if end < 0:
            self._error("unterminated byte sequence")
        encoded = self.text[self.pos + 1 : end]
        try:
            value = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            self._error("invalid base64 in byte sequence")
        self.pos = end + 1
        return value

    def _boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in ("0", "1"):
            self._error("expected ?0 or ?1")
        self.pos += 2
        return value == "1"
