"""Sphinx configuration for the sklearn-ntp documentation.

The build works offline: no intersphinx inventories and no remote images.
Set ``SKLEARN_NTP_GALLERY_RUN=0`` to build the example gallery without
executing the examples (the test suite runs them separately).
"""

import os
import re
import sys

import sklearn_ntp

# gallery_order.py lives beside this file; sphinx-gallery imports it by name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

project = "sklearn-ntp"
author = "sklearn-ntp developers"
copyright = "sklearn-ntp developers"
release = sklearn_ntp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

#: Methods that scikit-learn's metadata-routing machinery adds to every
#: estimator; their docstrings point into scikit-learn's own documentation.
_ROUTING_METHOD = re.compile(r"^(set_\w+_request|get_metadata_routing)$")


def _skip_routing_methods(app, what, name, obj, skip, options):
    return True if _ROUTING_METHOD.match(name) else skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_routing_methods)


# -- sphinx-gallery ----------------------------------------------------------
_run_gallery = os.environ.get("SKLEARN_NTP_GALLERY_RUN", "1").lower() not in {
    "0", "false", "no", "off"}

if _run_gallery:
    # Multithreaded BLAS on small matrices is slow on a busy machine; the
    # examples are sized for one thread.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": _run_gallery,
    "within_subsection_order": "gallery_order.quickstart_first",
    "doc_module": ("sklearn_ntp",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklearn_ntp": None},
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-ntp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = True
