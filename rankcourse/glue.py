"""Hand a number that a chapter's run produced to the book's prose (myst-nb's "glue").

The book build executes every notebook, and a sentence such as "FM beats LR by
{glue:text}`fm_gain:.3f` AUC" shows the value of this run, never a figure typed by hand::

    from rankcourse.glue import glue
    glue("fm_gain", auc["FM"] - auc["LR"])

This is ``myst_nb.glue`` with two differences. NumPy and torch scalars become plain Python
numbers first: myst-nb formats ``{glue:text}`key:.3f``` by reading back the value's text, and
``np.float64(0.5)`` (NumPy 2's text) is not a number to it. And where myst-nb is not installed (on
Colab, say) nothing is glued, because there is no page to paste into; the chapter still runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def _plain(value: Any) -> Any:
    """A NumPy scalar, 0-d array or 0-d tensor as the Python number it holds; anything else as is."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`name:.3f``` in the notebook's markdown.

    Args:
        name: the key the prose pastes; unique within the notebook.
        value: a number (Python, NumPy or a 0-d tensor) or a string.
        display: also show the value below the cell (off by default: the prose shows it).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"glue: name must be a non-empty string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # no book build here: nothing reads glued values
        return
    myst_glue(name, _plain(value), display=display)
