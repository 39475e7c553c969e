"""The default models shipped with neurorvq-stream (weights, sidecars and model cards).

Data only: ``engines.shipped_model`` picks the default of each kind from this folder.
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)
