#!/usr/bin/env python
"""Write locale/zh_Hans/LC_MESSAGES/django.po: Django's own Chinese with Chinese punctuation.

Django's Simplified Chinese catalogue glues ASCII punctuation to Chinese text ("名称:", "要删除 部门
'HQ', 将要求…", "您可以在下面再次编辑它.") and uses a few words the portal does not ("动作"). Our
LOCALE_PATHS catalogue wins over Django's, so this script copies every entry of Django's core, admin
and auth catalogues whose translation needs it, with the punctuation made Chinese, plus the portal's
own renames (RENAMES). Run it after a Django upgrade; `make messages` compiles the result.

    .venv/bin/python scripts/zh_punctuation.py
"""

import ast
import re
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
DJANGO = Path(django.__file__).resolve().parent
SOURCES = [
    DJANGO / "conf/locale/zh_Hans/LC_MESSAGES/django.po",
    DJANGO / "contrib/admin/locale/zh_Hans/LC_MESSAGES/django.po",
    DJANGO / "contrib/auth/locale/zh_Hans/LC_MESSAGES/django.po",
]
OUT = ROOT / "locale/zh_Hans/LC_MESSAGES/django.po"
CJK = "\u3400-\u9fff\uff00-\uffef\u201c\u201d"
# Words of Django's the portal says differently (msgid -> our Chinese).
RENAMES = {
    "Recent actions": "最近操作",
    "My actions": "我的操作",
    "None available": "暂无",
    "Authentication and Authorization": "角色与权限",
}


KEEP = {"yes,no,maybe"}  # a list the yesno filter splits on ASCII commas


def chinese_punctuation(text: str) -> str:
    text = re.sub(r"'(%\([a-z_]+\)s|\{[a-z_]+\})'", r"“\1”", text)  # 'x' quoting a name
    text = re.sub(rf"([{CJK}\)”s])\s*,\s*(?=[{CJK}%“])", r"\1，", text)
    text = re.sub(rf"([{CJK}”])\s*:\s*$", r"\1：", text)
    text = re.sub(rf"([{CJK}”])\s*:\s+", r"\1：", text)
    text = re.sub(rf"([{CJK}”])\s*\.(\s+|$)", r"\1。", text)
    text = re.sub(rf"([{CJK}”])\s*\?\s*$", r"\1？", text)
    text = re.sub(rf"([{CJK}”])\s*!\s*$", r"\1！", text)
    return text


def entries(path: Path):
    """(msgctxt, msgid, msgid_plural, [msgstr...]) per translated entry."""
    for block in path.read_text().split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            match = re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) (\".*\")$", line)
            if match:
                key = match.group(1)
                fields[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if fields.get("msgid"):
            strs = [fields[k] for k in sorted(fields) if k.startswith("msgstr")]
            yield fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural"), strs


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main() -> None:
    out = ['# Django\'s own Simplified Chinese with Chinese punctuation: written by scripts/zh_punctuation.py.',
           'msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"',
           '"Plural-Forms: nplurals=1; plural=0;\\n"', ""]
    seen = set()
    for source in SOURCES:
        for ctxt, msgid, plural, strs in entries(source):
            if (ctxt, msgid) in seen or not any(strs) or msgid in KEEP:
                continue
            fixed = [RENAMES.get(msgid, chinese_punctuation(s)) for s in strs]
            if msgid == ":":
                fixed = ["："]
            if fixed == strs:
                continue
            seen.add((ctxt, msgid))
            if ctxt:
                out.append(f"msgctxt {quote(ctxt)}")
            out.append(f"msgid {quote(msgid)}")
            if plural:
                out.append(f"msgid_plural {quote(plural)}")
                out += [f"msgstr[{i}] {quote(s)}" for i, s in enumerate(fixed)]
            else:
                out.append(f"msgstr {quote(fixed[0])}")
            out.append("")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(out))
    print(f"{OUT.relative_to(ROOT)}: {len(seen)} entries")


if __name__ == "__main__":
    main()
