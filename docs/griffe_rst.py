"""Griffe extension: show the package's Sphinx-style roles and math as Markdown.

vipml's docstrings are numpydoc, which uses reStructuredText roles (``:func:`x```) and
``.. math::`` blocks; mkdocstrings renders Markdown. This extension rewrites both when the API
reference is built, so the docstrings themselves stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const|math):`~?([^`]+)`")
MATH = re.compile(r"^([ \t]*)\.\. math::[ \t]*(.*)$")


def _markdown(text: str) -> str:
    """Roles become inline code; each ``.. math::`` block becomes a fenced text block."""
    text = ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        match = MATH.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, body = match.group(1), [match.group(2)] if match.group(2).strip() else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        out += [f"{indent}```text", *(f"{indent}{b}" for b in body if b), f"{indent}```", ""]
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite reStructuredText roles and math blocks in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _markdown(obj.docstring.value)
