"""``mgtune models``: every model, the item features it needs and where it came from."""

from __future__ import annotations

from mgtune.models.registry import get_model, load_plugins, model_names, model_origin

__all__ = ["model_table"]


def model_table() -> tuple[list[str], list[str]]:
    """The table's lines (every built-in model and every plugin that loads), and one line per broken plugin."""
    problems = load_plugins()
    rows = [("model", "needs", "trained", "from")]
    for name in model_names():
        cls = get_model(name)
        rows.append((name, cls.needs_modalities, "yes" if cls.trainable else "no", model_origin(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows], problems
