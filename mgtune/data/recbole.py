"""A dataset from RecBole's atomic files (``--recbole DIR``): the interactions of NAME.inter, features from NAME.item.

``NAME.inter``'s typed header (`mgtune.data.atomic_files`) gives the columns: the user and item ids
(``user_id``/``item_id``, RecBole's names; ``--user-col``/``--item-col`` for others) and, when
present, ``rating`` and ``timestamp``; then the same steps as ``--interactions``
(`mgtune.data.prepare.build_dataset`: duplicates, k-core, id maps, split, user graph).

``NAME.item`` becomes item features. Its fields are sorted into text and metadata by the rule of
`mgtune.data.item_fields` (a title is text, genres are a multi-hot, a year a scaled number), with
``--text-fields``/``--meta-fields`` to override. Where the two blocks go (the lead's decision):

- the text fields, encoded by ``--text-encoder`` (TF-IDF + SVD by default, or MiniLM), are
  ``text_feat.npy``;
- the metadata block is the dataset's second content modality, in MMRec's ``image`` slot
  (``image_feat.npy``), when the data has no images: MMRec's models take exactly two modality
  matrices, so genres in the image slot let a two-modality model use them rather than drop them.
  ``--metadata-slot text`` appends it to the text features instead (one modality, the image slot
  empty), ``none`` leaves it out. With ``--image-features`` (real images) the default is ``text``,
  with ``--text-features`` too ``none``.

``prepare.json`` records under ``item_fields`` every field of the file with its RecBole type, the
kind given to it and why (the rule or an override), and under ``features`` what each slot holds
(fields, kinds, the encoder, the width of each part). ``NAME.user`` is read for its header only:
no MMRec model takes user features, so its fields are listed as unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mgtune.checks import check_name
from mgtune.data.atomic_files import find_recbole_files, read_atomic
from mgtune.data.dataset import target_folder
from mgtune.data.features import FeatureSource, FeatureWriter, source_writer
from mgtune.data.item_fields import EMPTY, LEFT_OUT, TEXT, ItemField, ItemTable, detect_fields, fields_writer
from mgtune.data.prepare import Columns, build_dataset, check_prepare_values, interactions_from_frame
from mgtune.data.text import DEFAULT_TEXT_ENCODER, check_text_encoder
from mgtune.errors import ConfigError, DataFormatError

__all__ = ["METADATA_SLOTS", "prepare_recbole"]

METADATA_SLOTS = ("image", "text", "none")


def prepare_recbole(
    data_dir: str | Path, name: str | None, folder: Path, *, columns: Columns | None = None, core: int = 5,
    split: str = "random", seed: int = 0, min_rating: float | None = None, text_encoder: str | None = None,
    text_fields: Sequence[str] | None = None, meta_fields: Sequence[str] | None = None,
    metadata_slot: str | None = None, image: FeatureSource | None = None, text: FeatureSource | None = None,
    user_graph_k: int = 200, force: bool = False,
) -> dict[str, Any]:
    """Build dataset ``<data_dir>/<name>`` (``name`` None: the files' NAME) from a RecBole folder; return the summary.

    ``text_encoder`` None: TF-IDF where the item file has text; naming one when it has none is an
    error. ``metadata_slot`` None: ``image``; with ``image`` features ``text``; with both feature files ``none``.
    """
    columns = columns or Columns()
    check_prepare_values(core, split, seed, user_graph_k, min_rating)
    if metadata_slot is not None and metadata_slot not in METADATA_SLOTS:
        raise ConfigError(f"--metadata-slot must be one of {', '.join(METADATA_SLOTS)}, got {metadata_slot!r}")
    if metadata_slot == "none" and meta_fields:
        raise ConfigError(f"--meta-fields {','.join(meta_fields)} and --metadata-slot none: the metadata would be left "
                          "out; give one of them")
    files = find_recbole_files(folder)
    name = name or check_name(f"the dataset name {files.inter.name} gives (name it with --name)", files.name)
    target = target_folder(data_dir, name, force)
    inter = read_atomic(files.inter)
    data = interactions_from_frame(inter.frame, inter.path, columns)
    writers: dict[str, FeatureWriter] = {}
    inputs = [files.inter]
    for modality, source in (("image", image), ("text", text)):
        if source is not None:
            writers[modality] = source_writer(source)
            inputs += [p for p in (source.path, source.ids) if p]
    slot = metadata_slot or ("image" if image is None else "text" if text is None else "none")
    record: dict[str, Any] = {"inter_fields": _used(inter.types, data.frame.columns, columns)}

    fields: list[ItemField] = []
    table: ItemTable | None = None
    if files.item is not None:
        item = read_atomic(files.item)
        if len(item.frame) == 0:
            raise DataFormatError(f"{files.item}: no item rows, only a header; fill it or remove it")
        if columns.item not in item.types:
            raise DataFormatError(f"{files.item}: no item id field {columns.item!r} (the header has "
                                  f"{', '.join(f'{n}:{t}' for n, t in item.types.items())}); name it with --item-col")
        table = ItemTable.from_frame(files.item, item.frame, columns.item)
        fields = detect_fields(table, item.types, columns.item, text_fields, meta_fields)
        inputs.append(files.item)
    elif text_fields is not None or meta_fields is not None:
        raise ConfigError(f"--text-fields/--meta-fields: {folder} has no {files.name}.item to take them from")
    text_part = [f for f in fields if f.kind == TEXT]
    meta_part = [f for f in fields if f.kind not in (TEXT, EMPTY, LEFT_OUT)] if slot != "none" else []
    if text_encoder is not None and not text_part:
        raise ConfigError(f"--text-encoder {text_encoder}: {files.item or folder} has no text field to encode "
                          "(name one with --text-fields)")
    encoder = text_encoder or DEFAULT_TEXT_ENCODER
    if text_part:
        check_text_encoder(encoder)
    to_image = meta_part if slot == "image" else []
    to_text = meta_part if slot == "text" else []
    for modality, claimed in (("image", to_image), ("text", text_part + to_text)):
        if claimed and modality in writers:
            what = f"{files.name}.item's fields {', '.join(f.name for f in claimed)}"
            ways = ["--metadata-slot text or none"] if modality == "image" else [
                *(["--text-fields ''"] if text_part else []), *(["--metadata-slot image or none"] if to_text else [])]
            hint = f"pass {' and '.join(ways)}"
            raise ConfigError(f"--{modality}-features and {what} both make {modality}_feat.npy; {hint}")
    if table is not None and to_image:
        writers["image"] = fields_writer(table, [], to_image, encoder, seed)
    if table is not None and (text_part or to_text):
        writers["text"] = fields_writer(table, text_part, to_text, encoder, seed)
    if files.item is not None:
        slots = {f.name: "image" if f in to_image else "text" if f in text_part + to_text else None for f in fields}
        record["item_fields"] = {"file": str(files.item), "id": columns.item,
                                 "fields": [{**f.as_dict(), "slot": slots[f.name]} for f in fields]}
    if files.user is not None:
        record["user_fields"] = {"file": str(files.user), "fields": read_atomic(files.user, header_only=True).types,
                                 "note": "not used: MMRec's models take no user features"}
    extra = {"recbole": str(folder), "columns": vars(columns), "metadata_slot": slot,
             "text_encoder": encoder if text_part else None}
    return build_dataset(target, name, data, writers, inputs, core=core, split=split, seed=seed,
                         min_rating=min_rating, user_graph_k=user_graph_k, extra=extra, record=record, force=force)


def _used(types: dict[str, str], kept: Sequence[str], columns: Columns) -> dict[str, Any]:
    """The ``.inter`` fields with their types, and which ones the dataset keeps."""
    names = {"user": columns.user, "item": columns.item, "rating": columns.rating or "rating",
             "timestamp": columns.timestamp or "timestamp"}
    used = {role: names[role] for role in ("user", "item", "rating", "timestamp") if role in kept}
    return {"types": types, "used": used, "unused": [n for n in types if n not in used.values()]}
