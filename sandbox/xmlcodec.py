"""XML bodies for the Injection API (the docs advertise XML requests and responses, §2.1).

Elements are named like the JSON fields; a list is an element whose children are its items,
whatever they are called (`<To><Address>…</Address></To>`, `<Tags><Tag>x</Tag></Tags>`), and
`PerMessage` is a list of rows, each a list of merge fields. Names match without case, as in JSON.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# Keys (case-folded) whose value is a list; `permessage` is a list of lists.
LIST_KEYS = frozenset(
    {
        "messages",
        "to",
        "cc",
        "bcc",
        "customheaders",
        "attachments",
        "metadata",
        "tags",
        "global",
        "permessage",
        "messageresults",
        "addressresults",
    }
)
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# No DTDs at all: nothing legitimate needs one, and it closes entity-expansion tricks.
FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class XmlError(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: ET.Element, key: str) -> Any:
    if element.get(NIL) in ("true", "1"):
        return None
    children = list(element)
    if key == "permessage":
        return [[_object(field) for field in row] for row in children]
    if key in LIST_KEYS:
        return [_object(child) if len(child) else (child.text or "") for child in children]
    if children:
        return _object(element)
    return element.text or ""


def _object(element: ET.Element) -> dict[str, Any]:
    return {_local(child.tag): _value(child, _local(child.tag).casefold()) for child in element}


def loads(raw: bytes) -> dict[str, Any]:
    """Parse an XML request into the same dict a JSON body would give."""
    if FORBIDDEN.search(raw):
        raise XmlError("DTDs are not accepted.")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise XmlError(str(exc)) from exc
    return _object(root)


def _append(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if value is None:
        element.set("xsi:nil", "true")
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, dict):
        for key, item in value.items():
            _append(element, key, item)
    elif isinstance(value, list):
        item_name = {"MessageResults": "MessageResult", "AddressResults": "AddressResult"}.get(name, "Item")
        for item in value:
            _append(element, item_name, item)
    else:
        element.text = str(value)


def dumps(body: dict[str, Any], *, root: str = "InjectionResponse") -> bytes:
    """Render a response object (PascalCase keys) as XML."""
    element = ET.Element(root, {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    for key, value in body.items():
        _append(element, key, value)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
