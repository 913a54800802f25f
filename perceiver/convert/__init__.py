"""Convert Hugging Face ``transformers`` Perceiver models into this package's modules.

``from_transformers(hf_model)`` reads an instantiated ``transformers`` Perceiver model (any
weights: pretrained or random), builds the same architecture from this package's blocks and
copies every weight. The returned model takes what the Hugging Face model takes as ``inputs``
(text models also ``attention_mask=``) and returns what it returns as ``.logits``, except
optical flow, which takes raw frame pairs and returns pixels as DeepMind's model does
(``perceiver.convert.tasks.from_transformers``).

How the two implementations line up:

- ``PerceiverLayer`` = our ``CrossAttentionLayer`` (cross-attention: ``layernorm1`` on the
  queries, ``layernorm2`` on the keys/values) or ``SelfAttentionLayer`` (``layernorm1`` only);
  ``attention.output.dense`` is the output projection, ``layernorm`` + ``mlp`` the MLP. Both
  scale scores by 1/sqrt(head width) and use exact GELU; Hugging Face's additive
  -inf-like attention mask becomes a boolean pad mask.
- Hugging Face drops out attention probabilities only (``attention_probs_dropout_prob``);
  the converted model does the same (SDPA ``dropout_p``) and has no MLP dropout.
- Image models take channels-first, un-normalised float images: their adapters are built
  with ``channels_first=True`` and no mean/std.
- Optical flow decodes with the adapted inputs as queries (an ``InputQuery``).

Every conversion is described by one of this package's task configs (``perceiver.config``),
and the model is built from the config alone by ``perceiver.builders``, so
``PortableModel(config, model.state_dict())`` rebuilds it anywhere. ``save_converted`` /
``load_converted`` store a conversion as ``config.json`` + ``model.safetensors``.

Modules: ``tasks`` (one reader per Hugging Face class, and the conversion), ``blocks``
(encoder and decoders), ``adapters`` (input preprocessors), ``multimodal`` (the Kinetics
autoencoder), ``weights`` (the checked weight copy), ``storage``. The library never imports
``transformers``: models are recognised by class name and read through their attributes.
"""

from perceiver.convert.storage import CONFIG_FILE, WEIGHTS_FILE, load_converted, save_converted
from perceiver.convert.tasks import (
    ALL_SUPPORTED_CLASSES,
    SUPPORTED_CLASSES,
    from_transformers,
    from_transformers_with_config,
)

__all__ = [
    "ALL_SUPPORTED_CLASSES",
    "CONFIG_FILE",
    "SUPPORTED_CLASSES",
    "WEIGHTS_FILE",
    "from_transformers",
    "from_transformers_with_config",
    "load_converted",
    "save_converted",
]
