"""Shared fixtures: the tiny tokenizer (``tok``; a test file may define its own), a tiny
vocabulary and tiny Google-format BERT checkpoints written with TensorFlow's own
checkpoint writer (not through bert4keras)."""

import pet_keras  # noqa: F401  (must come before tensorflow / bert4keras)

import json
from pathlib import Path

import numpy as np
import pytest

from pet_keras.compat import write_checkpoint
from tiny import make_tokenizer

SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
UNUSED = ['[unused%d]' % i for i in range(1, 6)]
CHINESE = (
    '很不满意好理想感觉如何新闻体育财经'
    '的一是在了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得'
    '经十三之进着等部度家电力里水化高自二起小物现实加量都两前制机当使点从业本去把性应开它合还因由其些然外天政四日那社义事平'
    '故事文娱乐房汽车教科技军旅游际股票农电竞'
)
LATIN = list('abcdefghijklmnopqrstuvwxyz0123456789')
CONTINUATIONS = ['##' + c for c in 'abcdeo']

TINY_CONFIG = {
    'hidden_size': 32,
    'num_hidden_layers': 2,
    'num_attention_heads': 2,
    'intermediate_size': 64,
    'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.0,
    'attention_probs_dropout_prob': 0.0,
    'max_position_embeddings': 64,
    'type_vocab_size': 2,
    'initializer_range': 0.02,
}


def make_vocab():
    chars = list(dict.fromkeys(CHINESE))  # unique, in order
    tokens = SPECIAL + UNUSED + chars + LATIN + CONTINUATIONS
    assert len(tokens) == len(set(tokens))
    return tokens


@pytest.fixture(scope='session')
def tok():
    """bert4keras' Tokenizer over tests/tiny.py's vocabulary."""
    return make_tokenizer()


@pytest.fixture(scope='session')
def tiny_vocab():
    return make_vocab()


def bert_variable_shapes(
    vocab_size, hidden=32, layers=2, intermediate=64, max_position=64, type_vocab=2, with_mlm_head=True
):
    """{name: shape} of a Google BERT checkpoint of these sizes."""
    V, H, F = vocab_size, hidden, intermediate
    shapes = {
        'bert/embeddings/word_embeddings': (V, H),
        'bert/embeddings/token_type_embeddings': (type_vocab, H),
        'bert/embeddings/position_embeddings': (max_position, H),
        'bert/embeddings/LayerNorm/beta': (H,),
        'bert/embeddings/LayerNorm/gamma': (H,),
        'bert/pooler/dense/kernel': (H, H),
        'bert/pooler/dense/bias': (H,),
        'cls/seq_relationship/output_weights': (2, H),
        'cls/seq_relationship/output_bias': (2,),
    }
    for i in range(layers):
        p = 'bert/encoder/layer_%d/' % i
        for part in ('query', 'key', 'value'):
            shapes[p + 'attention/self/%s/kernel' % part] = (H, H)
            shapes[p + 'attention/self/%s/bias' % part] = (H,)
        shapes.update(
            {
                p + 'attention/output/dense/kernel': (H, H),
                p + 'attention/output/dense/bias': (H,),
                p + 'attention/output/LayerNorm/beta': (H,),
                p + 'attention/output/LayerNorm/gamma': (H,),
                p + 'intermediate/dense/kernel': (H, F),
                p + 'intermediate/dense/bias': (F,),
                p + 'output/dense/kernel': (F, H),
                p + 'output/dense/bias': (H,),
                p + 'output/LayerNorm/beta': (H,),
                p + 'output/LayerNorm/gamma': (H,),
            }
        )
    if with_mlm_head:
        shapes.update(
            {
                'cls/predictions/transform/dense/kernel': (H, H),
                'cls/predictions/transform/dense/bias': (H,),
                'cls/predictions/transform/LayerNorm/beta': (H,),
                'cls/predictions/transform/LayerNorm/gamma': (H,),
                'cls/predictions/output_bias': (V,),
            }
        )
    return shapes


def random_values(shapes, seed=0, scale=0.1):
    """Random float32 arrays for {name: shape}; LayerNorm gammas near 1;
    integer scalars (global_step) as int64."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name == 'global_step':
            values[name] = np.array(1000, dtype='int64')
        elif name.endswith('/gamma'):
            values[name] = (1.0 + scale * rng.standard_normal(shape)).astype('float32')
        else:
            values[name] = (scale * rng.standard_normal(shape)).astype('float32')
    return values


def write_random_checkpoint(prefix, shapes, seed=0):
    """Write a checkpoint of random values with exactly these names and
    shapes (TensorFlow's SaveV2); returns the values written."""
    values = random_values(shapes, seed)
    write_checkpoint(str(prefix), values)
    return values


def write_folder(folder, vocab, config=None, with_mlm_head=True, seed=0, hidden=None):
    """A Google-format folder (vocab.txt, bert_config.json, bert_model.ckpt)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(TINY_CONFIG, vocab_size=len(vocab), **(config or {}))
    (folder / 'vocab.txt').write_text('\n'.join(vocab) + '\n', encoding='utf-8')
    (folder / 'bert_config.json').write_text(json.dumps(config, indent=2), encoding='utf-8')
    shapes = bert_variable_shapes(
        len(vocab),
        hidden or config['hidden_size'],
        config['num_hidden_layers'],
        config['intermediate_size'],
        config['max_position_embeddings'],
        config['type_vocab_size'],
        with_mlm_head=with_mlm_head,
    )
    values = write_random_checkpoint(folder / 'bert_model.ckpt', shapes, seed)
    return {
        'dir': folder,
        'config_path': str(folder / 'bert_config.json'),
        'checkpoint_path': str(folder / 'bert_model.ckpt'),
        'dict_path': str(folder / 'vocab.txt'),
        'config': config,
        'values': values,
        'vocab': vocab,
    }


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory, tiny_vocab):
    """A random-weight tiny BERT with its MLM head, in Google's layout."""
    return write_folder(tmp_path_factory.mktemp('tiny_bert'), tiny_vocab, seed=1)


@pytest.fixture(scope='session')
def tiny_checkpoint_no_head(tmp_path_factory, tiny_vocab):
    """The same layout without cls/predictions/* (as some releases ship)."""
    return write_folder(tmp_path_factory.mktemp('tiny_bert_no_head'), tiny_vocab, with_mlm_head=False, seed=2)


@pytest.fixture(scope='session')
def shared_dir():
    path = Path(__file__).resolve().parents[1].parent / 'shared'
    if not path.is_dir():
        pytest.skip('../shared not present: %s (shared data for development and CI)' % path)
    return path
