"""Finding decoder blocks per architecture, and parsing layer selections."""

import pytest
import torch.nn as nn

from conftest import build_tiny
from steerlab.errors import SteerlabError
from steerlab.layerspec import parse_layers
from steerlab.models import decoder_blocks


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2", "gpt2", "gpt_neox", "olmo"])
def test_decoder_blocks_found_for_each_architecture(arch):
    lm = build_tiny(arch, n_layers=3)
    blocks = decoder_blocks(lm.model)
    assert isinstance(blocks, nn.ModuleList)
    assert len(blocks) == 3


def test_unknown_architecture_error_names_class_and_fix():
    class Strange(nn.Module):
        pass

    with pytest.raises(SteerlabError) as error:
        decoder_blocks(Strange())
    message = str(error.value)
    assert "Strange" in message and "_BLOCK_PATHS" in message and "model.layers" in message


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("all", list(range(18))),
        ("30%-60%", [6, 7, 8, 9, 10]),
        ("4,6,8", [4, 6, 8]),
        ("4-6", [4, 5, 6]),
        ("-1", [17]),
        ("2,4-5,2", [2, 4, 5]),
        ([3, 1], [1, 3]),
    ],
)
def test_parse_layers(spec, expected):
    assert parse_layers(spec, 18) == expected


@pytest.mark.parametrize("spec, fragment", [("18", "out of range"), ("x", "cannot read"), ("8-4", "backwards"), ("60%-30%", "lower")])
def test_parse_layers_errors(spec, fragment):
    with pytest.raises(SteerlabError, match=fragment):
        parse_layers(spec, 18)
