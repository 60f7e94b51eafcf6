"""The search spaces that ship with mgtune: one ``<model>.yaml`` per model (package data, `mgtune.search_spaces`).

The wheel installs this folder as the package ``mgtune.search_spaces`` (see ``pyproject.toml``); a
``search_spaces/`` folder in the working directory takes precedence over it.
"""
