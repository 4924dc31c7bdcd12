"""The Chinese edition keeps step with the English one.

- Coverage: the messages extracted from the current English sources (Sphinx's gettext builder,
  nothing executed) all have a translation, not a fuzzy one, on every page that
  ``locale/translations.toml`` lists as translated; every page is listed, as translated or as
  pending with a reason.
- Tokens: a translation keeps its message's maths, roles and their targets, inline code and
  link targets.
- The built Chinese site (after ``bash scripts/build_book.sh --language zh_CN``): Chinese pages,
  a link to the other language on every page both ways, Chinese search that finds a glossary term.
- The Chinese student notebooks: made from the catalogues, their code cells the English ones.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "scripts"))

import translations  # noqa: E402  (scripts/translations.py)
from book_translations import (  # noqa: E402
    Settings,
    catalogue_messages,
    glossary_terms,
    is_chinese,
    needs_translation,
    token_differences,
    tokens,
    translate_footer,
    translate_markdown,
    translate_notebook,
    translated_student_text,
    translation_of,
    zh_student_path,
)
from student_notebooks import chapter_notebooks, student_notebook_text  # noqa: E402

LANGUAGE = "zh_CN"
SETTINGS = Settings.read(ROOT, LANGUAGE)
CATALOGUES = ROOT / "locale" / LANGUAGE / "LC_MESSAGES"
PO_FILES = sorted(CATALOGUES.rglob("*.po"))
ENGLISH_SITES = {"student": ROOT / "_build" / "html", "instructor": ROOT / "_build" / "instructor" / "html"}


def _page(po_path: Path) -> str:
    return po_path.relative_to(CATALOGUES).with_suffix("").as_posix()


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """The .pot catalogues of the current sources (about 10 s)."""
    return translations.extract(tmp_path_factory.mktemp("gettext") / "gettext")


# --------------------------------------------------------------------------- coverage


def test_every_page_is_listed_as_translated_or_pending(extracted):
    pages = set(translations.pages(extracted))
    listed = set(SETTINGS.translated) | set(SETTINGS.pending)
    assert pages - listed == set(), "pages neither translated nor pending in locale/translations.toml"
    # A pending page may be one that another branch adds (the list is merged before the page).
    assert set(SETTINGS.translated) - pages == set(), "translated pages that the book does not have"


def test_translated_catalogues_have_no_fuzzy_header():
    """A `#, fuzzy` header (sphinx-intl's template) marks the catalogue's metadata as unreviewed;
    msgfmt drops a fuzzy header, and with it the charset of the Chinese text."""
    fuzzy = [page for page in SETTINGS.translated
             if polib.pofile(str(SETTINGS.catalogue(ROOT, page))).metadata_is_fuzzy]
    assert not fuzzy, f"fuzzy catalogue headers (remove their '#, fuzzy' line): {fuzzy}"


def test_translated_pages_have_a_current_translation_of_every_message(extracted):
    problems = []
    for page in SETTINGS.translated:
        catalogue = SETTINGS.catalogue(ROOT, page)
        if not catalogue.is_file():
            problems.append(f"{page}: no catalogue {catalogue.relative_to(ROOT)}")
            continue
        entries = {e.msgid: e for e in polib.pofile(str(catalogue)) if not e.obsolete}
        for message in polib.pofile(str(extracted / f"{page}.pot")):
            if not needs_translation(message.msgid, SETTINGS.keep_as_is):
                continue
            entry = entries.get(message.msgid)
            if entry is None:
                state = "not in the catalogue (run `python scripts/translations.py update`)"
            elif "fuzzy" in entry.flags:
                state = "fuzzy (the English changed: check the translation, drop the fuzzy flag)"
            elif not entry.msgstr:
                state = "untranslated"
            else:
                continue
            problems.append(f"{page}: {state}: {message.msgid[:120]!r}")
    assert not problems, f"{len(problems)} message(s):\n" + "\n".join(problems)


def test_figure_captions_and_alt_texts_are_extracted_with_their_chapter(extracted):
    notebook = json.loads((ROOT / "notebooks" / "04_dcn.ipynb").read_text(encoding="utf8"))
    texts = translations.figure_messages(notebook)
    assert texts, "chapter 4 has figures with captions and alt texts"
    messages = {e.msgid for e in polib.pofile(str(extracted / "notebooks" / "04_dcn.pot"))}
    missing = [text for text, _ in texts if text not in messages]
    assert not missing, missing


_EXERCISE_TITLE = re.compile(r"^(?:`{3,}|:{3,})\{exercise(?:-start)?\}[ \t]+(\S.*?)\s*$", re.MULTILINE)
_SOLUTION_LABEL = re.compile(r"^(?:`{3,}|:{3,})\{solution(?:-start)?\}[ \t]+(\S+)", re.MULTILINE)


def _markdown(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_exercise_titles_are_messages_of_their_chapter_and_solution_labels_are_not(extracted):
    missing, labels_as_messages, titles = [], [], 0
    for source in chapter_notebooks(ROOT):
        text = _markdown(source)
        messages = {e.msgid for e in polib.pofile(str(extracted / source.relative_to(ROOT).with_suffix(".pot")))}
        for title in _EXERCISE_TITLE.findall(text):
            titles += 1
            if title not in messages:
                missing.append(f"{source.name}: {title!r}")
        labels_as_messages += [f"{source.name}: {label!r}" for label in _SOLUTION_LABEL.findall(text)
                               if label in messages]
    assert titles >= 20, "the chapters have titled exercises"
    assert not missing, "exercise titles not extracted:\n" + "\n".join(missing)
    assert not labels_as_messages, labels_as_messages


def _tiny_book(root: Path) -> Path:
    """A book of one page and one notebook, each with a titled exercise and its solution, built
    with the book's configuration and extensions (execution off, solutions shown)."""
    for folder in ("_ext", "_vendor", "_static"):
        shutil.copytree(ROOT / "book" / folder, root / "book" / folder)
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "locale").mkdir()
    shutil.copy(ROOT / "locale" / "translations.toml", root / "locale" / "translations.toml")
    (root / "book" / "intro.md").write_text(
        "# A page\n\n```{exercise} Why no softmax?\n:label: ex-page\n\nThink.\n```\n\n"
        "```{solution} ex-page\nBecause.\n```\n", encoding="utf8")
    cells = ["# Tiny\n",
             "````{exercise-start} The masked activation unit\n:label: ex-gated\n````\n\nWrite it.\n",
             "````{exercise-end}\n````\n",
             "```{solution-start} ex-gated\n```\n\nThe answer.\n",
             "```{solution-end}\n```\n"]
    notebook = {"cells": [{"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": text}
                          for i, text in enumerate(cells)],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks").mkdir()
    (root / "notebooks" / "tiny.ipynb").write_text(json.dumps(notebook), encoding="utf8")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["local_extensions"] = {name: str(root / "book" / "_ext")
                                            for name in config["sphinx"]["local_extensions"]}
    # Solutions shown, titled "Solution to Exercise N (title)": the solution repeats the title.
    config["sphinx"]["config"].update(hide_solutions=False, exercise_style="")
    (root / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
    config["sphinx"]["config"].update(language=LANGUAGE, locale_dirs=[str(root / "locale")])
    (root / "_config_zh.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/tiny\n",
                                   encoding="utf8")
    return root


def _jupyter_book(root: Path, *args: str) -> None:
    binary = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(binary), "build", str(root), "--all", *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_exercise_titles_are_extracted_and_shown_translated(tmp_path):
    """A tiny book through the gettext builder, then built in Chinese with a catalogue that
    translates the two titles: the exercise and its solution show the Chinese title."""
    book = _tiny_book(tmp_path / "book")
    _jupyter_book(book, "--builder", "custom", "--custom-builder", "gettext")
    titles = {"Why no softmax?": "为什么不用 softmax？", "The masked activation unit": "带掩码的激活单元"}
    for page, title in (("book/intro", "Why no softmax?"), ("notebooks/tiny", "The masked activation unit")):
        pot = polib.pofile(str(book / "_build" / "gettext" / f"{page}.pot"))
        assert title in {e.msgid for e in pot}, f"{page}: {[e.msgid for e in pot]}"
        assert "ex-gated" not in {e.msgid for e in pot}  # a solution's label is no title
        po = polib.POFile()
        po.metadata = {"Content-Type": "text/plain; charset=utf-8", "Language": LANGUAGE}
        po.extend(polib.POEntry(msgid=e.msgid, msgstr=titles.get(e.msgid, "")) for e in pot)
        target = book / "locale" / LANGUAGE / "LC_MESSAGES" / f"{page}.po"
        target.parent.mkdir(parents=True, exist_ok=True)
        po.save(str(target))
    shutil.rmtree(book / "_build")
    _jupyter_book(book, "--config", str(book / "_config_zh.yml"))
    for page, chinese in (("book/intro", "为什么不用"), ("notebooks/tiny", "带掩码的激活单元")):
        text = (book / "_build" / "html" / f"{page}.html").read_text(encoding="utf8")
        shown = [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<p class="admonition-title">(.*?)</p>', text)]
        assert len(shown) == 2, shown  # the exercise and its solution
        assert all(chinese in t for t in shown), f"{page}: titles {shown}"
        assert not any("softmax?" in t or "masked" in t for t in shown), shown


def test_pending_pages_say_why():
    assert all(reason.strip() for reason in SETTINGS.pending.values())


def test_the_allow_list_holds_only_messages_the_book_has():
    known = {e.msgid for po in PO_FILES for e in polib.pofile(str(po))}
    assert SETTINGS.keep_as_is <= known, sorted(SETTINGS.keep_as_is - known)


@pytest.mark.parametrize("msgid, needed", [
    ("$\\mathbf{x}_0$", False),                       # maths only
    ("`schema.n_fields`", False),                     # code only
    ("{doc}`1 </notebooks/01_framework_and_losses>`", False),
    ("特征交叉 / 特征组合", False),                     # already Chinese
    ("中文导读：本章用 DCN 的交叉网络学习特征交叉。", False),
    ("feature interaction, feature cross", True),
    ('The source calls it 跷跷板现象 ("seesaw").', True),  # English quoting Chinese
    ("the **id** that field $f$ takes", True),
])
def test_which_messages_need_a_translator(msgid, needed):
    assert needs_translation(msgid) is needed


@pytest.mark.parametrize("msgid", [
    # Chinese sentences full of model and metric names (a 中文导读 item of chapter 9)
    "以 Bayes 最优模型为参照，用 AUC 和 GAUC 比较 sum、mean、DIN、softmax-DIN 与 BST 池化，并解释两个指标为何不同；",
    "在已知贝叶斯最优 AUC 的合成数据上，比较 LR、FM、Wide & Deep 和 DeepFM；",
    # Chinese sentences that gloss their terms in English, in parentheses
    "多任务学习（multi-task learning）用一个模型同时学习点击和转化（multi-objective ranking）。",
    "在加权 BCE、焦点损失（focal loss）和负采样（negative down-sampling）之间做出选择；",
    "识别 CTR 模型的“一轮过拟合”（one-epoch overfitting），并据此安排训练轮数；",
    "共享底层 (Shared-Bottom)",
    "嵌入 / 嵌入向量 / Embedding",
    "（注：见第 4 章）",                                  # only an aside: read whole
])
def test_a_chinese_message_with_english_names_or_glosses_is_chinese(msgid):
    assert is_chinese(msgid)
    assert not needs_translation(msgid)


@pytest.mark.parametrize("msgid", [
    # English sentences that gloss a term in Chinese, in parentheses or not
    "feature crossing (特征交叉) is …",
    "Feature crossing (特征交叉) multiplies two fields; DCN does it explicitly.",
    "A cross (特征交叉（显式）) of two fields.",
    'The source calls it 跷跷板现象 ("seesaw").',
    "Glossary: 中文 — English",
    "where ranking sits in the pipeline, after recall (召回)",
    "(see chapter 4)",                                   # only an aside: read whole
])
def test_an_english_message_that_quotes_chinese_needs_a_translator(msgid):
    assert not is_chinese(msgid)
    assert needs_translation(msgid)


def test_a_chinese_message_counts_as_translated_by_itself():
    entry = polib.POEntry(msgid="中文小结：交叉网络显式地构造特征交叉。", msgstr="")
    assert translation_of(entry) == entry.msgid
    assert is_chinese(entry.msgid)


def test_a_fuzzy_translation_is_no_translation():
    entry = polib.POEntry(msgid="Ranking comes next.", msgstr="接下来是排序。", flags=["fuzzy"])
    assert translation_of(entry) is None


# --------------------------------------------------------------------------- tokens


def test_tokens_are_maths_roles_with_targets_code_and_links():
    found = tokens("See {numref}`fig-a`, {cite:p}`cheng2016wide`, $x_f$ and $$a = b$$, "
                   "`nn.Linear`, [the docs](https://pytorch.org/) and {term}`Embedding <embedding>`.")
    assert found == collections.Counter({
        "role:numref:fig-a": 1, "role:cite:p:cheng2016wide": 1, "math:$x_f$": 1,
        "math:$$a = b$$": 1, "code:nn.Linear": 1, "link:https://pytorch.org/": 1,
        "role:term:embedding": 1})


def test_a_directive_name_in_inline_code_is_code_not_a_role():
    found = tokens("cells from a `{solution-start}` to its `{solution-end}`, and {ref}`grading`")
    assert found == collections.Counter({"code:{solution-start}": 1, "code:{solution-end}": 1,
                                         "role:ref:grading": 1})


def test_token_check_catches_a_dropped_role():
    msgid = "DCN {cite:p}`wang2017deep` crosses features explicitly ({numref}`fig-ch04-dcn`)."
    assert token_differences(msgid, "DCN 显式地构造特征交叉（{numref}`fig-ch04-dcn`）。") == [
        "missing 'role:cite:p:wang2017deep'"]


def test_token_check_catches_a_changed_maths_span():
    msgid = "with $L$ cross layers the degree is $L + 1$"
    differences = token_differences(msgid, "$L$ 层交叉层给出 $L+1$ 阶")
    assert differences == ["missing 'math:$L + 1$'", "added 'math:$L+1$'"]


def test_token_check_lets_a_role_show_translated_text_with_the_same_target():
    msgid = "chapter {doc}`4 </notebooks/04_dcn>` and {term}`embedding`"
    assert token_differences(msgid, "第 {doc}`4 </notebooks/04_dcn>` 章和{term}`嵌入 <embedding>`") == []


@pytest.mark.parametrize("po_path", PO_FILES, ids=_page)
def test_every_translation_keeps_the_tokens_of_its_message(po_path):
    problems = [f"{e.msgid[:80]!r}: {', '.join(token_differences(e.msgid, e.msgstr))}"
                for e in polib.pofile(str(po_path))
                if e.msgstr and not e.obsolete and token_differences(e.msgid, e.msgstr)]
    assert not problems, f"{_page(po_path)}:\n" + "\n".join(problems)


def test_the_source_chapter_page_keeps_the_chinese_that_it_quotes():
    """The page that reads the source critically quotes its Chinese text: the translation keeps it exactly."""
    po_path = SETTINGS.catalogue(ROOT, "book/source_chapter")
    problems = [f"{e.msgid[:80]!r}: lacks {run!r}"
                for e in polib.pofile(str(po_path)) if e.msgstr and not e.obsolete
                for run in re.findall(r"[\u4e00-\u9fff][\u4e00-\u9fff\u3000-\u303f\uff01-\uff5e…“”]*", e.msgid)
                if run not in e.msgstr]
    assert not problems, f"{_page(po_path)}:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- config


def test_chinese_footer_carries_the_english_footers_links_and_release():
    english = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["html"]["extra_footer"]
    chinese = translate_footer(english, SETTINGS.config["footer"])
    assert re.findall(r'href="([^"]+)"', chinese) == re.findall(r'href="([^"]+)"', english)
    version = re.search(r"rankcourse (v\S+) ", english).group(1)
    assert f"rankcourse {version}" in chinese and "CC BY 4.0" in chinese


def test_chinese_footer_with_a_link_too_few_is_an_error():
    with pytest.raises(ValueError, match="English footer has 2"):
        translate_footer('<a href="a">x</a> <a href="b">y</a>', "{href1}")


def test_glossary_terms_become_the_search_dictionary():
    terms = glossary_terms(ROOT, SETTINGS)
    assert {"特征交叉", "负迁移", "跷跷板现象"} <= set(terms)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]+", t) for t in terms)


# --------------------------------------------------------------------------- notebooks


def test_a_cell_whose_messages_are_all_translated_becomes_chinese():
    cell = "## Cross layers\n\nEach layer multiplies\nby $\\mathbf{x}_0$.\n\n```{note}\nShort.\n```\n"
    messages = {"Cross layers": "交叉层", "Each layer multiplies by $\\mathbf{x}_0$.": "每层都乘以 $\\mathbf{x}_0$。",
                "Short.": "简短。"}
    text, lacking = translate_markdown(cell, messages)
    assert lacking == []
    assert text == "## 交叉层\n\n每层都乘以 $\\mathbf{x}_0$。\n\n```{note}\n简短。\n```\n"


def test_a_cell_with_an_untranslated_or_uncovered_message_stays_english():
    cell = "## Cross layers\n\nEach layer multiplies.\n"
    assert translate_markdown(cell, {"Cross layers": "交叉层", "Each layer multiplies.": None}) == (
        cell, ["Each layer multiplies."])
    text, lacking = translate_markdown(cell, {"Cross layers": "交叉层"})
    assert text == cell and lacking == ["(text without a message) Each layer multiplies."]


def test_an_exercise_title_in_its_directive_line_is_translated_with_the_cell():
    cell = ("````{exercise-start} The masked activation unit\n:label: ch09-ex-din-pooling\n````\n\n"
            "Write `din_pooling`.\n")
    messages = {"The masked activation unit": "带掩码的激活单元", "Write `din_pooling`.": "编写 `din_pooling`。"}
    text, lacking = translate_markdown(cell, messages)
    assert lacking == []
    assert text == "````{exercise-start} 带掩码的激活单元\n:label: ch09-ex-din-pooling\n````\n\n编写 `din_pooling`。\n"
    # An untranslated title keeps the whole cell English, as any untranslated message does.
    untranslated = {**messages, "The masked activation unit": None}
    assert translate_markdown(cell, untranslated) == (cell, ["The masked activation unit"])


def test_translated_notebook_keeps_code_cells_and_reports_english_cells():
    notebook = {"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Title\n"},
        {"cell_type": "code", "id": "b", "metadata": {}, "source": "x = 1  # Title",
         "outputs": [], "execution_count": None},
        {"cell_type": "markdown", "id": "c", "metadata": {}, "source": "Not translated yet."},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    result, report = translate_notebook(notebook, {"Title": "标题", "Not translated yet.": None}, "nb.ipynb")
    assert [c["source"] for c in result["cells"]] == ["# 标题\n", "x = 1  # Title", "Not translated yet."]
    assert report == ["nb.ipynb: cell 2 (c) stays English: 1 message(s) untranslated, "
                      "first: 'Not translated yet.'"]


@pytest.mark.parametrize("source", chapter_notebooks(ROOT), ids=lambda p: p.stem)
def test_chinese_student_copy_has_the_english_student_copys_code(source):
    english = json.loads(student_notebook_text(source, ROOT))
    chinese = json.loads(translated_student_text(source, ROOT, SETTINGS)[0])
    code = [[c["id"], c["source"]] for c in english["cells"] if c["cell_type"] == "code"]
    assert [[c["id"], c["source"]] for c in chinese["cells"] if c["cell_type"] == "code"] == code
    assert [c["id"] for c in chinese["cells"]] == [c["id"] for c in english["cells"]]
    assert chinese["cells"][0]["source"].startswith("*学生版，不含解答。*")
    assert f"`{source.relative_to(ROOT).as_posix()}`" in chinese["cells"][0]["source"]


def test_committed_chinese_student_copies_are_current():
    for source in chapter_notebooks(ROOT):
        page = source.relative_to(ROOT).with_suffix("").as_posix()
        target = zh_student_path(source, LANGUAGE)
        if page in SETTINGS.translated:
            assert target.is_file(), f"run `python scripts/translations.py notebooks`: {target} is missing"
            assert target.read_text(encoding="utf8") == translated_student_text(source, ROOT, SETTINGS)[0], (
                f"{target} is stale: run `python scripts/translations.py notebooks`")
        else:
            assert not target.exists(), f"{target}: {page} is not listed as translated"


# --------------------------------------------------------------------------- the built site


def _site(edition: str) -> tuple[Path, Path]:
    english = ENGLISH_SITES[edition]
    chinese = english / LANGUAGE
    if not (chinese / "index.html").is_file():
        flag = " --instructor" if edition == "instructor" else ""
        pytest.skip(f"no Chinese {edition} edition in {chinese.relative_to(ROOT)}: run "
                    f"`bash scripts/build_book.sh{flag}` then `bash scripts/build_book.sh{flag} --language zh_CN`")
    return english, chinese


def _content_pages(site: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(p for p in site.rglob("*.html")
                  if "_static" not in p.parts and LANGUAGE not in p.relative_to(site).parts and p.name not in skip)


def _language_link(page: Path) -> str | None:
    found = re.search(r'<p class="rankcourse-language-link"><a href="([^"]+)"', page.read_text(encoding="utf8"))
    return found.group(1) if found else None


@pytest.mark.parametrize("edition", ["student", "instructor"])
def test_every_page_links_to_its_counterpart_in_the_other_language(edition):
    english, chinese = _site(edition)
    problems = []
    for page in _content_pages(english):
        counterpart = chinese / page.relative_to(english)
        for here, there in ((page, counterpart), (counterpart, page)):
            href = _language_link(here) if here.is_file() else None
            if href is None or (here.parent / href).resolve() != there.resolve():
                problems.append(f"{here.relative_to(english.parent)}: link {href!r}, not to {there.name}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("edition", ["student", "instructor"])
def test_chinese_pages_are_chinese_with_a_chinese_footer_and_search_box(edition):
    _, chinese = _site(edition)
    for page in _content_pages(chinese):
        text = page.read_text(encoding="utf8")
        assert '<html lang="zh-CN"' in text, page
        footer = re.search(r'<div class="extra_footer">(.*?)</div>', text, re.DOTALL).group(1)
        assert "代码：" in footer and "Code:" not in footer, page
        assert SETTINGS.config["search_bar_text"] in text, page
        captions = re.findall(r'<p aria-level="2" class="caption" role="heading"><span class="caption-text">([^<]*)',
                              text)
        assert captions and all(is_chinese(c) for c in captions), f"{page}: sidebar captions {captions}"


def _search_index(site: Path) -> dict:
    text = (site / "searchindex.js").read_text(encoding="utf8")
    return json.loads(text[text.index("(") + 1: text.rindex(")")])


def test_chinese_search_finds_a_chinese_term_on_its_page():
    _, chinese = _site("student")
    index = _search_index(chinese)
    glossary = index["docnames"].index("book/glossary")
    dcn = index["docnames"].index("notebooks/04_dcn")
    found = index["terms"].get("特征交叉")
    assert found is not None, "特征交叉 is not a search term of the Chinese edition"
    pages = found if isinstance(found, list) else [found]
    assert glossary in pages and dcn in pages, "特征交叉 should find the glossary and chapter 4 (DCN)"
    translated_title = polib.pofile(str(SETTINGS.catalogue(ROOT, "book/glossary")))[0].msgstr
    assert translated_title and index["titles"][glossary] == translated_title


def test_chinese_student_edition_offers_the_chinese_student_notebooks():
    _, chinese = _site("student")
    problems = []
    for source in chapter_notebooks(ROOT):
        page = chinese / "notebooks" / f"{source.stem}.html"
        if not page.is_file():
            problems.append(f"{page} was not built")
            continue
        translated = zh_student_path(source, LANGUAGE).is_file()
        folder = f"notebooks/student/{LANGUAGE}/" if translated else "notebooks/student/"
        if f"/{folder}{source.name}" not in page.read_text(encoding="utf8"):
            problems.append(f"{page.name}: the Colab button does not open {folder}{source.name}")
        download = chinese / "_sources" / "notebooks" / source.name
        expected = translated_student_text(source, ROOT, SETTINGS)[0]
        if download.read_text(encoding="utf8") != expected:
            problems.append(f"{download.relative_to(ROOT)} is not the Chinese student copy")
    assert not problems, "\n".join(problems)


def test_a_cell_with_display_maths_is_translated_when_its_prose_is():
    """The lines of a $$...$$ block or a {math} directive are maths, not English without a message."""
    cell = ("The loss is\n\n$$\n\\ell = -\\log p\n$$\n\nand its gradient\n\n"
            "```{math}\n:label: eq-x\n\\partial \\ell = p - y\n```\n")
    messages = {"The loss is": "损失是", "and its gradient": "它的梯度"}
    text, lacking = translate_markdown(cell, messages)
    assert lacking == [] and "损失是" in text and "\\ell = -\\log p" in text and "p - y" in text
    indented = "- The loss is\n\n  ```{math}\n  w_i = \\begin{cases} a \\end{cases}\n  ```\n"
    assert translate_markdown(indented, messages)[1] == []


def test_a_cell_with_fenced_code_is_translated_when_its_prose_is():
    """The lines of a ```bash / ```python block are code (gettext extracts no message from them);
    a directive's fences around prose are not code."""
    cell = ("## Running it\n\nOn a laptop:\n\n```bash\ntorchrun --standalone -m job \\\n"
            "    --rows 200\n```\n\nYour script needs three lines:\n\n```python\n"
            "device = init_process_group(\"cuda\")  # or \"cpu\"\n```\n\n"
            "````{exercise-start} A title\n:label: ex-a\n````\n\nWrite the function.\n")
    messages = {"Running it": "运行", "On a laptop:": "在笔记本电脑上：",
                "Your script needs three lines:": "你的脚本需要三行：",
                "Write the function.": "编写这个函数。"}
    text, lacking = translate_markdown(cell, messages)
    assert lacking == [], lacking
    assert "## 运行" in text and "编写这个函数。" in text
    assert "torchrun --standalone -m job \\\n    --rows 200\n```" in text
    assert 'device = init_process_group("cuda")  # or "cpu"' in text


def test_prose_after_a_directive_or_inside_it_is_not_taken_for_code():
    """A bare fence that closes a directive opens no code block, and a directive's body is prose:
    English there without a message still keeps the cell English."""
    after = "````{exercise-start} A title\n:label: ex-a\n````\n\nWrite the function.\n"
    assert translate_markdown(after, {}) == (after, ["(text without a message) Write the function."])
    inside = "```{note}\nKeep it short.\n```\n"
    assert translate_markdown(inside, {}) == (inside, ["(text without a message) Keep it short."])
    code = "~~~{code-block} python\nprint('hello world')\n~~~\n\nDone here.\n"
    assert translate_markdown(code, {"Done here.": "完成。"})[1] == []
