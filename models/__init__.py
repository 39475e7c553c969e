"""The default models shipped with neurorvq-stream (weights, sidecars and model cards).

Data only: ``engines.shipped_model`` picks the default of each kind from this folder.
"""

if __name__ != "neurorvq_stream.models":  # by its folder name it would be a second copy
    raise ImportError(f"Import neurorvq_stream.models, not the folder {__name__!r}: the folders "
                      "are parts of one package (pip install -e . installs it).")
