#!/usr/bin/env python
"""List the English catalogue's entries that still need a translation: empty or fuzzy.

    .venv/bin/python scripts/po_todo.py          # print them; exit 1 when there are any

Run it after `make messages`; fill each `msgstr` in locale/en/LC_MESSAGES/django.po (remove the
`#, fuzzy` line of a fuzzy entry once its guess is corrected) and run `make messages` again.
"""

import ast
import sys
from pathlib import Path

PO = Path(__file__).resolve().parent.parent / "locale" / "en" / "LC_MESSAGES" / "django.po"


def entries(text: str):
    """Yield (flags, msgid, msgstr) per entry; multi-line strings joined, plural forms ignored."""
    for block in text.split("\n\n"):
        flags, key, parts = "", None, {"msgid": "", "msgstr": ""}
        for line in block.splitlines():
            if line.startswith("#,"):
                flags = line
            elif line.startswith(("msgid ", "msgstr ", "msgstr[0] ")):
                key, _sep, rest = line.partition(" ")
                key = "msgstr" if key == "msgstr[0]" else key
                parts[key] = ast.literal_eval(rest)
            elif line.startswith('"') and key in parts:
                parts[key] += ast.literal_eval(line)
            elif line.startswith(("msgid_plural", "msgstr[")):
                key = None
        if parts["msgid"]:
            yield flags, parts["msgid"], parts["msgstr"]


def main() -> int:
    todo = [(f, i) for f, i, s in entries(PO.read_text(encoding="utf-8")) if not s or "fuzzy" in f]
    for flags, msgid in todo:
        print(("fuzzy    " if "fuzzy" in flags else "missing  ") + msgid)
    return 1 if todo else 0


if __name__ == "__main__":
    sys.exit(main())
