"""Tiny, self-contained helpers for the pattern / generator / predict / train /
script tests: an in-memory vocabulary and tokenizer, random tiny MLMs.

Plain functions (not fixtures), so these tests do not depend on conftest.py.
"""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import tempfile

import numpy as np

from bert4keras.tokenizers import Tokenizer

from pet_keras.data import Example
from pet_keras.model import build_mlm

SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + ['[unused%d]' % i for i in range(1, 6)]
# The pattern presets' characters, the sentiment and news label words, punctuation,
# and a pool of ordinary characters (for synthetic texts).
CHINESE = (
    '很不满意好理想感觉如何下面报导一则新闻体育财经故事是的，。？（）'
    '文化娱乐房产汽车教科技军旅游国际股票农业电竞'
    '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬'
    '东西南北红黄蓝白黑长短高低多少快慢早晚前后左右里外开关生死明暗冷热'
)
LATIN = list('abcdefghijklmnopqrstuvwxyz0123456789')


def vocab_tokens():
    chars = list(dict.fromkeys(CHINESE))
    tokens = SPECIAL + chars + LATIN
    assert len(tokens) == len(set(tokens))
    return tokens


def make_tokenizer(tokens=None):
    """bert4keras' Tokenizer over the tiny vocabulary (lower-cased)."""
    tokens = tokens or vocab_tokens()
    return Tokenizer({t: i for i, t in enumerate(tokens)}, do_lower_case=True)


def write_vocab(path, tokens=None):
    tokens = tokens or vocab_tokens()
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(tokens) + '\n')
    return str(path)


def tiny_config(vocab_size, hidden=32, layers=2, heads=2, intermediate=64, max_position=64):
    return {
        'vocab_size': vocab_size,
        'hidden_size': hidden,
        'num_hidden_layers': layers,
        'num_attention_heads': heads,
        'intermediate_size': intermediate,
        'hidden_act': 'gelu',
        'max_position_embeddings': max_position,
        'type_vocab_size': 2,
        'hidden_dropout_prob': 0.0,
        'attention_probs_dropout_prob': 0.0,
    }


def make_mlm(vocab_size, directory=None, dict_path=None, **sizes):
    """A random tiny ``MaskedLM`` built with ``pet_keras.model.build_mlm`` from
    a JSON config written to ``directory`` (a new temporary folder by default).
    The config path is kept as ``mlm.config_path``."""
    directory = str(directory or tempfile.mkdtemp(prefix='tiny_mlm_'))
    os.makedirs(directory, exist_ok=True)
    config_path = os.path.join(directory, 'bert_config.json')
    with open(config_path, 'w', encoding='utf-8') as f:
        json.dump(tiny_config(vocab_size, **sizes), f)
    mlm = build_mlm(config_path, dict_path=dict_path)
    mlm.config_path = config_path
    return mlm


def sharpen(mlm, seed=0):
    """Replace a random model's small initial weights by larger random ones
    (unit-variance embeddings, kernels scaled by 1/sqrt(fan-in), unit-variance
    output bias), so its slot distributions are far from uniform and depend on
    the input: tests comparing probabilities then mean something."""
    rng = np.random.default_rng(seed)
    for layer in mlm.full_model.layers:
        if not layer.weights or layer.name.endswith('Norm'):
            continue  # LayerNorms keep gamma 1, beta 0
        new = []
        for w in layer.get_weights():
            if layer.name.startswith('Embedding') or layer.name == 'MLM-Bias':
                new.append(rng.standard_normal(w.shape))
            elif w.ndim == 2:  # kernels
                new.append(rng.standard_normal(w.shape) / np.sqrt(w.shape[0]))
            else:  # biases
                new.append(0.1 * rng.standard_normal(w.shape))
        layer.set_weights([v.astype('float32') for v in new])


def sharpened_mlm(vocab_size, directory=None, dict_path=None, seed=0, **sizes):
    """A random tiny ``MaskedLM`` (``make_mlm``) with sharpened weights (``sharpen(mlm, seed)``):
    slot distributions far from uniform and dependent on the input."""
    mlm = make_mlm(vocab_size, directory, dict_path, **sizes)
    sharpen(mlm, seed)
    return mlm


def ex(text, label=None, source='test:1', **fields):
    """An Example with a ``text`` field (or the given fields)."""
    return Example(fields or {'text': text}, label, source)
