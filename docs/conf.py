"""Sphinx configuration for the flask-connectwise docs (Pallets theme, Markdown pages via MyST).

Build with warnings as errors, as the test command does::

    python3 -m sphinx -W --keep-going -q -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

from pallets_sphinx_themes import ProjectLink, get_version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "flask-connectwise"
copyright = "flask-connectwise developers"
author = "flask-connectwise developers"
release, version = get_version("flask-connectwise")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
    "pallets_sphinx_themes",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
# connectwise-api.md is the research the code and the sandbox cite (third-party sources and
# libraries): kept in the repository beside the docs, not published as a page of the site.
exclude_patterns = ["_build", "connectwise-api.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No intersphinx: the build runs offline (CI and the test suite have network only to loopback).

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_context = {
    "project_links": [
        ProjectLink("Source code", "https://example.invalid/flask-connectwise"),
    ]
}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_title = f"flask-connectwise documentation ({version})"
html_show_sourcelink = False
