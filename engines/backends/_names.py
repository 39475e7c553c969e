"""The backend names that ``create_engine`` and the run configuration accept.

Apart from the backends themselves so that checking a configuration imports no torch.
"""

BACKENDS = ("auto", "pytorch", "onnxruntime", "tensorrt")
