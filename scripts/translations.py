#!/usr/bin/env python3
"""Keep the book's translations in step with the English pages.

    python scripts/translations.py update      extract the English messages, refresh the
                                               catalogues in locale/, list what needs translating
    python scripts/translations.py status      messages and words per page: translated, fuzzy,
                                               untranslated (reads the catalogues only)
    python scripts/translations.py notebooks   write the Chinese student notebooks of the
                                               translated chapters (notebooks/student/zh_CN/)
    ... --check                                with `notebooks`: exit 1 if a copy is stale or missing
    ... --language zh_CN                       the language (the only one so far)

`update` runs Sphinx's gettext builder on the sources (notebooks not executed, solutions
included, about 10 s) into _build/gettext, then `sphinx-intl update`: a changed English message
comes back fuzzy (its old translation kept as a hint), a new one empty. Translate them in
locale/zh_CN/LC_MESSAGES/<page>.po (any PO editor, or a text editor: fill msgstr, delete the
`#, fuzzy` line), then run `status`. Which pages must be complete is set in
locale/translations.toml; tests/test_translations.py enforces it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from book_translations import (  # noqa: E402
    LOCALE_DIR,
    Settings,
    needs_translation,
    translated_student_text,
    translation_of,
    zh_student_path,
)
from student_notebooks import chapter_notebooks  # noqa: E402

GETTEXT_DIR = ROOT / "_build" / "gettext"


def extraction_config(target: Path) -> None:
    """_config.yml for extraction: nothing executed, solutions included (the instructors'
    edition shows them), extension paths absolute (they are relative to the config file)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx = config.setdefault("sphinx", {})
    sphinx["local_extensions"] = {
        name: str((ROOT / path).resolve()) for name, path in (sphinx.get("local_extensions") or {}).items()
    }
    sphinx.setdefault("config", {})["hide_solutions"] = False
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")


def extract(out: Path = GETTEXT_DIR, jupyter_book: str | None = None) -> Path:
    """Write one .pot catalogue per page of the current sources into `out`; return `out`."""
    work = out.parent / f".{out.name}-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    extraction_config(work / "_config.yml")
    if jupyter_book is None:
        venv = ROOT / ".venv" / "bin" / "jupyter-book"
        jupyter_book = str(venv) if venv.exists() else "jupyter-book"
    # Without outputs, cross-references to figures are unresolved: warnings, not errors here.
    done = subprocess.run([jupyter_book, "build", str(ROOT), "--config", str(work / "_config.yml"),
                           "--path-output", str(work), "--builder", "custom", "--custom-builder", "gettext",
                           "--all", "-q"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the gettext build failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(work / "_build" / "gettext"), str(out))
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out / "_static", ignore_errors=True)
    add_figure_messages(out)
    return out


def figure_messages(notebook: dict) -> list[tuple[str, str]]:
    """(text, where) of each figure caption and image alt text set in a notebook's cell metadata.

    The gettext build runs without outputs, so it sees no image and no figure: their texts
    are read from the metadata instead (``rankcourse.figure.caption``, ``mystnb.image.alt``).
    """
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        metadata = cell.get("metadata", {})
        figure = (metadata.get("rankcourse") or {}).get("figure") or {}
        alt = ((metadata.get("mystnb") or {}).get("image") or {}).get("alt")
        if figure.get("caption"):
            found.append((str(figure["caption"]).strip(), f"figure caption, cell {index} ({figure.get('name')})"))
        if alt:
            found.append((str(alt).strip(), f"image alt text, cell {index}"))
    return found


def add_figure_messages(pot_dir: Path) -> None:
    """Append the figure captions and alt texts of every chapter to its .pot catalogue."""
    for source in chapter_notebooks(ROOT):
        pot_path = pot_dir / source.relative_to(ROOT).with_suffix(".pot")
        if not pot_path.is_file():
            continue
        pot = polib.pofile(str(pot_path))
        known = {entry.msgid for entry in pot}
        for text, where in figure_messages(json.loads(source.read_text(encoding="utf8"))):
            if text not in known:
                pot.append(polib.POEntry(msgid=text, msgstr="", comment=where))
                known.add(text)
        pot.save(str(pot_path))


def pages(pot_dir: Path) -> list[str]:
    return sorted(p.relative_to(pot_dir).with_suffix("").as_posix() for p in pot_dir.rglob("*.pot"))


def _strip_header_date(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith('"POT-Creation-Date'))


def update(language: str) -> int:
    pot_dir = extract()
    locale = ROOT / LOCALE_DIR
    before = {p: p.read_text(encoding="utf8") for p in (locale / language).rglob("*.po")}
    subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot_dir),
                    "-l", language, "-d", str(locale), "-w", "0"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    # A new extraction date alone is not a change: keep such files as they were.
    for path, old in before.items():
        if path.exists() and _strip_header_date(path.read_text(encoding="utf8")) == _strip_header_date(old):
            path.write_text(old, encoding="utf8")
    settings = Settings.read(ROOT, language)
    listed = set(settings.translated) | set(settings.pending)
    for page in pages(pot_dir):
        if page not in listed:
            print(f"new page {page}: list it as translated or pending in locale/translations.toml")
    todo = 0
    for page in pages(pot_dir):
        po = polib.pofile(str(settings.catalogue(ROOT, page)))
        missing = [e for e in po if not e.obsolete and translation_of(e, settings.keep_as_is) is None]
        if not missing:
            continue
        mark = "pending" if page in settings.pending else "TO TRANSLATE"
        print(f"{page} ({mark}): {len(missing)} message(s)")
        if page not in settings.pending:
            for entry in missing:
                state = "fuzzy" if "fuzzy" in entry.flags else "untranslated"
                print(f"    [{state}] {entry.msgid[:110]}")
                todo += 1
    print(f"{todo} message(s) to translate on pages not listed as pending "
          "(tests/test_translations.py fails until they are translated)")
    return 0


def status(language: str) -> int:
    settings = Settings.read(ROOT, language)
    folder = ROOT / LOCALE_DIR / language / "LC_MESSAGES"
    header = f"{'page':42} {'state':10} {'messages':>8} {'transl.':>8} {'as is':>6} {'fuzzy':>6} {'untr.':>6} " \
             f"{'words':>7} {'w.todo':>7}"
    print(header)
    totals = [0] * 7
    for path in sorted(folder.rglob("*.po")):
        page = path.relative_to(folder).with_suffix("").as_posix()
        po = polib.pofile(str(path))
        entries = [e for e in po if not e.obsolete]
        as_is = [e for e in entries if not needs_translation(e.msgid, settings.keep_as_is)]
        fuzzy = [e for e in entries if "fuzzy" in e.flags and e not in as_is]
        done = [e for e in entries if e.msgstr and "fuzzy" not in e.flags and e not in as_is]
        untranslated = [e for e in entries if not e.msgstr and e not in as_is]
        words = sum(len(e.msgid.split()) for e in entries)
        todo_words = sum(len(e.msgid.split()) for e in fuzzy + untranslated)
        row = [len(entries), len(done), len(as_is), len(fuzzy), len(untranslated), words, todo_words]
        totals = [a + b for a, b in zip(totals, row)]
        state = "translated" if page in settings.translated else "pending" if page in settings.pending else "UNLISTED"
        print(f"{page:42} {state:10} " + " ".join(f"{n:>{w}}" for n, w in zip(row, (8, 8, 6, 6, 6, 7, 7))))
    print(f"{'total':42} {'':10} " + " ".join(f"{n:>{w}}" for n, w in zip(totals, (8, 8, 6, 6, 6, 7, 7))))
    return 0


def notebooks(language: str, check: bool) -> int:
    settings = Settings.read(ROOT, language)
    stale = []
    for source in chapter_notebooks(ROOT):
        page = source.relative_to(ROOT).with_suffix("").as_posix()
        target = zh_student_path(source, language)
        if page not in settings.translated:
            continue
        text, report = translated_student_text(source, ROOT, settings)
        for line in report:
            print(line)
        if target.is_file() and target.read_text(encoding="utf8") == text:
            continue
        stale.append(target.relative_to(ROOT).as_posix())
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf8")
    for name in stale:
        print(f"{'stale' if check else 'written'}: {name}")
    return 1 if (check and stale) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["update", "status", "notebooks"])
    parser.add_argument("--language", default="zh_CN")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.command == "update":
        return update(args.language)
    if args.command == "status":
        return status(args.language)
    return notebooks(args.language, args.check)


if __name__ == "__main__":
    sys.exit(main())
