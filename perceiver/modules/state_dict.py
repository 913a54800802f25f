"""Loading state dicts saved under older key names (models registered by earlier versions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def rename_on_load(module: nn.Module, renames: Mapping[str, str]) -> None:
    """Let ``module`` load state dicts whose keys below it start with an old name.

    Before ``module`` loads, every key ``<prefix><old><rest>`` (``prefix`` being where
    ``module`` sits in the model) becomes ``<prefix><new><rest>`` for each ``old -> new`` of
    ``renames``; keys already in the new form are left alone. Saving always uses the new names.
    """

    def hook(
        _module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix) :]
            for old, new in renames.items():
                if rest.startswith(old):
                    state_dict[prefix + new + rest[len(old) :]] = state_dict.pop(key)
                    break

    module.register_load_state_dict_pre_hook(hook)
