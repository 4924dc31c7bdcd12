"""The book's translations: gettext catalogues, what must be translated, and the tokens that must not change.

The English pages are the source. Sphinx's gettext builder extracts their messages (one
paragraph, heading, list item or table cell each) into one catalogue per page
(``gettext_compact = False``), and ``sphinx-intl`` keeps the translations in
``locale/<language>/LC_MESSAGES/<page>.po``. ``scripts/translations.py`` drives both; this module
holds the rules that the script, the build and ``tests/test_translations.py`` share:

- which messages need a translation (:func:`needs_translation`): not those that are only maths,
  code, roles and punctuation, not those already written in Chinese (the chapters' Chinese
  guides), and not those on the explicit allow list of ``locale/translations.toml``;
- which pages must be fully translated and which are pending, with the reason
  (:class:`Settings`, read from ``locale/translations.toml``);
- the tokens that a translation keeps unchanged (:func:`tokens`): maths, roles and their
  targets, inline code and link targets;
- the translated edition's title and footer (:func:`translate_config`);
- Chinese notebooks made from the catalogues (:func:`translate_notebook`).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

LOCALE_DIR = "locale"
SETTINGS_FILE = "locale/translations.toml"

# Maths first (a `$` inside code is not maths, but code spans inside maths do not occur).
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.DOTALL)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$(?!\$)")
# A MyST role: {name}`content`; the target is what sits in <...>, or the whole content.
_ROLE = re.compile(r"(?<!`)\{([A-Za-z][\w:.-]*)\}(`+)(.+?)\2", re.DOTALL)
_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\(\s*([^)\s]+)[^)]*\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_HREF = re.compile(r"""href=["']([^"']+)["']""")
_TITLED_TARGET = re.compile(r"\A(?:.*\S)?\s*<([^<>]+)>\Z", re.DOTALL)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_PARENTHESES = re.compile(r"\([^()]*\)|（[^（）]*）")
#: A message is Chinese when it has at least this many Chinese characters per English word
#: (outside parentheses; see :func:`is_chinese`). A Chinese word is one to three characters.
CJK_PER_LATIN_WORD = 2


def tokens(text: str) -> collections.Counter[str]:
    """The multiset of what a translation must keep: maths, roles with targets, code, link targets.

    A role's shown text may be translated (``{term}`嵌入 <embedding>```), so a role counts by its
    name and target only; everything else counts by its exact text.
    """
    found: collections.Counter[str] = collections.Counter()
    rest = text
    for pattern in (_DISPLAY_MATH, _INLINE_MATH):
        found.update(f"math:{m.group(0)}" for m in pattern.finditer(rest))
        rest = pattern.sub(" ", rest)
    for match in _ROLE.finditer(rest):
        name, content = match.group(1), match.group(3).strip()
        titled = _TITLED_TARGET.match(content)
        found[f"role:{name}:{titled.group(1) if titled else content}"] += 1
    rest = _ROLE.sub(" ", rest)
    found.update(f"code:{m.group(2)}" for m in _CODE.finditer(rest))
    rest = _CODE.sub(" ", rest)
    for pattern in (_LINK_TARGET, _AUTOLINK, _HREF):
        found.update(f"link:{m.group(1)}" for m in pattern.finditer(rest))
    return found


def prose(text: str) -> str:
    """`text` without its maths, roles, inline code and link targets: what a translator rewrites."""
    rest = text
    for pattern in (_DISPLAY_MATH, _INLINE_MATH, _ROLE, _CODE, _LINK_TARGET, _AUTOLINK, _HREF):
        rest = pattern.sub(" ", rest)
    return rest


def _without_parentheses(text: str) -> str:
    """`text` without its parenthesised asides, ``(...)`` and ``（...）``, innermost first."""
    while True:
        shorter = _PARENTHESES.sub(" ", text)
        if shorter == text:
            return text
        text = shorter


def is_chinese(text: str) -> bool:
    """True when `text` is written in Chinese.

    The rule reads the prose (no maths, roles, code or link targets) without its parenthesised
    asides: a Chinese sentence glosses its terms in English in parentheses
    (多任务学习（multi-task learning）), an English one glosses in Chinese (feature crossing
    (特征交叉)). What is left is Chinese when it has Chinese characters and at least
    `CJK_PER_LATIN_WORD` of them per English word (words of two or more letters): model and
    metric names inside a Chinese sentence (用 AUC 和 GAUC 比较 sum、mean、DIN) stay well below
    that, while an English sentence that quotes a Chinese term (The source calls it 跷跷板现象)
    has several English words per quoted character. Text made only of parenthesised asides is
    read whole.
    """
    words = prose(text)
    outside = _without_parentheses(words)
    if _CJK.search(outside) or _LATIN_WORD.search(outside):
        words = outside
    cjk = len(_CJK.findall(words))
    latin = len(_LATIN_WORD.findall(words))
    return cjk > 0 and cjk >= CJK_PER_LATIN_WORD * latin


def token_differences(msgid: str, msgstr: str) -> list[str]:
    """What differs between the tokens of a message and of its translation (empty when none)."""
    source, target = tokens(msgid), tokens(msgstr)
    missing = sorted((source - target).elements())
    extra = sorted((target - source).elements())
    return [f"missing {t!r}" for t in missing] + [f"added {t!r}" for t in extra]


@dataclasses.dataclass(frozen=True)
class Settings:
    """``locale/translations.toml`` for one language: translated pages, pending pages, allow list."""

    language: str
    translated: tuple[str, ...]
    pending: dict[str, str]
    keep_as_is: frozenset[str]
    config: dict[str, str]

    @classmethod
    def read(cls, root: Path, language: str = "zh_CN") -> "Settings":
        path = root / SETTINGS_FILE
        data = tomllib.loads(path.read_text(encoding="utf8")).get(language)
        if data is None:
            raise ValueError(f"{path}: no [{language}] table")
        translated = tuple(data.get("translated", []))
        pending = dict(data.get("pending", {}))
        both = sorted(set(translated) & set(pending))
        if both:
            raise ValueError(f"{path}: pages listed both as translated and as pending: {both}")
        for page, reason in pending.items():
            if not str(reason).strip():
                raise ValueError(f"{path}: pending page {page!r} needs a reason")
        return cls(language, translated, pending, frozenset(data.get("keep_as_is", [])),
                   dict(data.get("config", {})))

    def catalogue(self, root: Path, page: str) -> Path:
        return root / LOCALE_DIR / self.language / "LC_MESSAGES" / f"{page}.po"


def needs_translation(msgid: str, keep_as_is: frozenset[str] = frozenset()) -> bool:
    """Whether a message needs a translator: it has English words outside maths, code and roles,
    is not already Chinese, and is not on the allow list of messages kept as they are."""
    if msgid in keep_as_is or is_chinese(msgid):
        return False
    return bool(_LATIN_WORD.search(prose(msgid)))


def translation_of(entry: Any, keep_as_is: frozenset[str] = frozenset()) -> str | None:
    """The usable translation of a catalogue entry (a polib entry): its msgstr, the msgid itself
    when the message needs none, or None (untranslated or fuzzy)."""
    if entry.msgstr and "fuzzy" not in entry.flags:
        return entry.msgstr
    if not needs_translation(entry.msgid, keep_as_is):
        return entry.msgid
    return None


# --------------------------------------------------------------------------- the edition's config

_VERSION = re.compile(r"\bv\d+(?:\.\d+)+\S*?(?=[\s(（]|$)")


def translate_footer(english: str, template: str) -> str:
    """The translated footer: `template` with ``{version}`` and ``{href1}``, ``{href2}``, ... taken
    from the English footer, so that a fork's links and a new release carry over.

    Raises ValueError when the two footers do not have the same number of links.
    """
    hrefs = _HREF.findall(english)
    wanted = sorted(set(int(n) for n in re.findall(r"\{href(\d+)\}", template)))
    if wanted != list(range(1, len(hrefs) + 1)):
        raise ValueError(f"the translated footer uses links {wanted} but the English footer has "
                         f"{len(hrefs)}: {hrefs}; update [config] footer in {SETTINGS_FILE}")
    version = _VERSION.search(english)
    values = {f"href{i}": href for i, href in enumerate(hrefs, 1)}
    values["version"] = version.group(0) if version else ""
    return template.format(**values)


def translate_config(config: dict[str, Any], settings: Settings, edition: str) -> dict[str, Any]:
    """The Jupyter Book config of the translated edition, from the English one."""
    config = copy.deepcopy(config)
    words = settings.config
    html = config.setdefault("html", {})
    config["title"] = words["title"] + (words["instructor_title_suffix"] if edition == "instructor" else "")
    html["extra_footer"] = translate_footer(html.get("extra_footer", ""), words["footer"])
    if edition == "instructor":
        html["announcement"] = words["instructor_announcement"]
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["numfig_format"] = {"figure": words["figure_number"]}
    return config


def glossary_terms(root: Path, settings: Settings, page: str = "book/glossary") -> list[str]:
    """The Chinese terms of the glossary (its messages written in Chinese, split at ``/``).

    Chinese search splits text into words with jieba; given these as a user dictionary
    (``html_search_options = {"dict": ...}``), a term such as 特征交叉 is indexed whole as well as
    in its parts, so a reader who searches for the term finds it.
    """
    import polib

    terms: set[str] = set()
    for entry in polib.pofile(str(settings.catalogue(root, page))):
        if entry.obsolete or not is_chinese(entry.msgid):
            continue
        for part in re.split(r"[/／、；;,，]", re.sub(r"[(（][^)）]*[)）]", "", entry.msgid)):
            part = part.strip()
            if part and all(_CJK.match(c) for c in part):
                terms.add(part)
    return sorted(terms)


# --------------------------------------------------------------------------- notebooks

_FENCE_OR_OPTION = re.compile(r"^\s*(?:`{3,}|:{3,}|:[\w-]+:|\(.+\)=\s*$|<!--.*-->\s*$)")


def _loose(msgid: str) -> re.Pattern[str]:
    """A pattern for `msgid` as written in a cell: any run of whitespace may be a line break."""
    return re.compile(r"\s+".join(re.escape(word) for word in msgid.split()))


# Display maths in a markdown cell: $$...$$, or the body of a {math} directive.
_DISPLAY_MATHS_BLOCK = re.compile(r"\$\$.*?\$\$|^[ \t]*(`{3,}|:{3,})\{math\}.*?^[ \t]*\1[ \t]*$",
                                 re.DOTALL | re.MULTILINE)


# A fence line: ``` or ~~~ (three or more) and its info string (a language, or {directive}).
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")
_CODE_DIRECTIVES = frozenset({"code", "code-block", "code-cell", "sourcecode"})


def _closes(fence: re.Match[str], opening: str) -> bool:
    """Whether the fence line `fence` closes the block opened by the fence marks `opening`."""
    marks = fence.group(1)
    return marks[0] == opening[0] and len(marks) >= len(opening) and not fence.group(2)


def _without_code_blocks(text: str) -> str:
    """`text` without its fenced code blocks (```bash ... ```, {code-block} directives).

    Sphinx's gettext builder extracts no message from a literal block, so its lines are code,
    not English left untranslated. A directive's fences (````{exercise-start} ... ````) are
    kept with their body, which is prose.
    """
    kept: list[str] = []
    directives: list[str] = []  # the fence marks of the directives open around the line
    code: str | None = None  # the fence marks of the code block the line is in
    for line in text.split("\n"):
        fence = _FENCE.match(line)
        if code is not None:
            if fence and _closes(fence, code):
                code = None
            continue
        if fence:
            name = re.match(r"\{([\w:-]+)\}", fence.group(2))
            if directives and _closes(fence, directives[-1]):
                directives.pop()
            elif name and name.group(1) not in _CODE_DIRECTIVES:
                directives.append(fence.group(1))
            else:
                code = fence.group(1)
                continue
        kept.append(line)
    return "\n".join(kept)


def translate_markdown(source: str, messages: dict[str, str | None]) -> tuple[str, list[str]]:
    """Translate one markdown cell with `messages` (msgid -> translation, None when missing).

    Returns the cell's new text and the messages it still lacks. The cell is changed only when
    nothing is lacking: a cell that is half English, half Chinese helps nobody. What is left
    after taking out every known message must be markup (fences, directive options, labels,
    list and table signs); English words left over mean the cell has text that no message
    covers, and the cell stays English.
    """
    spans: list[tuple[int, int, str]] = []
    lacking: list[str] = []
    for msgid in sorted(messages, key=len, reverse=True):
        for match in _loose(msgid).finditer(source):
            start, end = match.span()
            if any(start < e and s < end for s, e, _ in spans):
                continue
            translation = messages[msgid]
            if translation is None:
                lacking.append(msgid)
            spans.append((start, end, translation or msgid))
    leftover = source
    for start, end, _ in sorted(spans, reverse=True):
        leftover = leftover[:start] + " " + leftover[end:]
    # Display maths is never a message: its lines are maths, not English left untranslated.
    leftover = _DISPLAY_MATHS_BLOCK.sub(" ", leftover)
    # Nor is a fenced code block (Sphinx keeps literal blocks as they are in every language).
    leftover = _without_code_blocks(leftover)
    uncovered = [line.strip() for line in leftover.splitlines()
                 if _LATIN_WORD.search(prose(line)) and not _FENCE_OR_OPTION.match(line)]
    lacking += [f"(text without a message) {line}" for line in uncovered]
    if lacking:
        return source, lacking
    text = source
    for start, end, translation in sorted(spans, reverse=True):
        text = text[:start] + translation + text[end:]
    return text, []


def translate_notebook(notebook: dict[str, Any], messages: dict[str, str | None],
                       name: str, skip_ids: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """A copy of `notebook` whose markdown cells are translated where every message of the cell is.

    Code cells are not touched. Returns the copy and, for each cell left in English, a line
    naming the notebook, the cell and the first message it lacks.
    """
    result = copy.deepcopy(notebook)
    report = []
    for index, cell in enumerate(result["cells"]):
        if cell.get("cell_type") != "markdown" or cell.get("id") in skip_ids:
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        text, lacking = translate_markdown(source, messages)
        if lacking:
            report.append(f"{name}: cell {index} ({cell.get('id', '?')}) stays English: "
                          f"{len(lacking)} message(s) untranslated, first: {lacking[0][:100]!r}")
        else:
            cell["source"] = text
    return result, report


def zh_student_path(source: Path, language: str) -> Path:
    """Where the translated student copy of ``notebooks/NAME.ipynb`` lives:
    ``notebooks/student/<language>/NAME.ipynb``."""
    from student_notebooks import student_path

    english = student_path(source)
    return english.parent / language / english.name


def translated_student_text(source: Path, root: Path, settings: Settings) -> tuple[str, list[str]]:
    """The text of the translated, solution-free student copy of the chapter `source` (under
    `root`), and the report of the cells left in English."""
    import json

    import polib
    from student_notebooks import strip_solutions

    name = source.resolve().relative_to(root.resolve()).as_posix()
    notebook = strip_solutions(json.loads(source.read_text(encoding="utf8")), name)
    catalogue = settings.catalogue(root, name.removesuffix(".ipynb"))
    messages = catalogue_messages(polib.pofile(str(catalogue)), settings.keep_as_is) if catalogue.is_file() else {}
    note_id = "student-copy-note"  # the first cell that strip_solutions adds: it has its own translation
    translated, report = translate_notebook(notebook, messages, name, skip_ids=(note_id,))
    note = settings.config.get("student_note")
    if note and translated["cells"] and translated["cells"][0].get("id") == note_id:
        translated["cells"][0]["source"] = note.format(
            source=name, catalogue=catalogue.resolve().relative_to(root.resolve()).as_posix())
    return json.dumps(translated, indent=1, ensure_ascii=False) + "\n", report


def catalogue_messages(po: Any, keep_as_is: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """msgid -> usable translation (or None) for every current (not obsolete) entry of a polib file."""
    return {e.msgid: translation_of(e, keep_as_is) for e in po if not e.obsolete}
