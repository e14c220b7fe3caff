"""The artifact: one safetensors file with the deploy form's tensors and what loading needs.

Example::

    info = save_artifact(small, policy, "model.safetensors", x)   # ArtifactInfo(file_bytes=...)
    again = load_artifact("model.safetensors", MyModel())         # checksums checked, no pickle
"""

from autocompress.artifact._format import (
    FORMAT,
    VERSION,
    TensorSpec,
    crc_placeholder,
    file_nbytes,
    header_nbytes,
    metadata,
)
from autocompress.artifact._io import (
    ArtifactInfo,
    embedded_policy,
    load_artifact,
    read_header,
    save_artifact,
    state_bytes,
    unique_state,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "ArtifactInfo",
    "TensorSpec",
    "crc_placeholder",
    "embedded_policy",
    "file_nbytes",
    "header_nbytes",
    "load_artifact",
    "metadata",
    "read_header",
    "save_artifact",
    "state_bytes",
    "unique_state",
]
