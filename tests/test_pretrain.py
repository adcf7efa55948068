"""pet_keras.pretrain: the vocabulary, batches, and short pretraining runs
(a tiny model: 2 layers, hidden 32, sequences of 32, batches of 4)."""
import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import hashlib
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from bert4keras.tokenizers import Tokenizer

from pet_keras import pretrain as pretrain_module
from pet_keras.generator import positions_batch
from pet_keras.model import build_mlm, load_tokenizer
from pet_keras.pretrain import (
    SPECIAL_TOKENS, BlockBatches, basic_tokens, build_vocab, pretrain, tokenize_corpus,
)

SENTENCES = [
    '今天天气很好，我们去公园散步。',
    '这部电影很不错，演员表演自然。',
    '新闻报道体育比赛的结果。',
    '财经市场今天上涨了百分之三。',
    'The CPU model abc123 is fast.',
    '我很满意这次的服务，感觉很好。',
]
DOCS = [SENTENCES[i % 6] + SENTENCES[(i * 7 + 3) % 6] for i in range(240)]

CONFIG = {
    'vocab_size': None, 'hidden_size': 32, 'num_hidden_layers': 2, 'num_attention_heads': 2,
    'intermediate_size': 64, 'hidden_act': 'gelu', 'hidden_dropout_prob': 0.0,
    'attention_probs_dropout_prob': 0.0, 'max_position_embeddings': 64, 'type_vocab_size': 2,
    'initializer_range': 0.02,
}
RUN = dict(config=CONFIG, batch_size=4, seq_len=32, save_every=20, warmup=1, learning_rate=5e-3,
           heldout_blocks=8, vocab_size=300)


# ---------------------------------------------------------------- vocabulary

def test_build_vocab_order_and_invariants():
    docs = ['好好好好好不不不不满满满意意', '好不满意 abc ab a', '罕']
    vocab = build_vocab(docs, max_size=100, min_count=2, unused=3)
    assert vocab[:5] == ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] == SPECIAL_TOKENS
    assert vocab[5:8] == ['[unused1]', '[unused2]', '[unused3]']
    body = vocab[8:]
    # counts: 好 6, 不 5, 满 4, 意 3, a 3 (ties by token), ##b 2 ; ##c 1 and 罕 1 are below min_count
    assert body == ['好', '不', '满', 'a', '意', '##b']
    assert len(vocab) == len(set(vocab))


def test_build_vocab_max_size_and_frequency_order():
    text = ''.join(chr(0x4e00 + i) * (i + 1) for i in range(60))  # character i appears i+1 times
    vocab = build_vocab([text], max_size=40, min_count=1, unused=5)
    assert len(vocab) == 40
    body = vocab[10:]
    assert body == [chr(0x4e00 + i) for i in range(59, 29, -1)]  # the 30 most frequent, descending
    assert len(vocab) == len(set(vocab))
    assert build_vocab([text], max_size=1000, min_count=50, unused=0)[5:] == \
        [chr(0x4e00 + i) for i in range(59, 48, -1)]


def test_build_vocab_ties_are_deterministic():
    a = build_vocab(['甲乙丙丁', '丁丙乙甲'], min_count=1, unused=0)
    b = build_vocab(['丁丙乙甲', '甲乙丙丁'], min_count=1, unused=0)
    assert a == b


def test_tokenizer_on_built_vocab_has_no_unk_for_seen_characters():
    vocab = build_vocab(DOCS, min_count=1)
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    for sentence in ['我很满意这次的服务，感觉很好。', 'The CPU model abc123 is fast.',
                     '今天CPU很好abc，model fast。', 'cpu MODEL ab12 is']:
        ids = tokenizer.encode(sentence)[0]
        assert tokenizer._token_unk_id not in ids, (sentence, tokenizer.tokenize(sentence))
    assert tokenizer.tokenize('CPU abc123')[1:-1] == ['c', '##p', '##u', 'a', '##b', '##c', '##1', '##2', '##3']
    assert tokenizer.encode('龘')[0][1:-1] == [tokenizer._token_unk_id]  # never seen


def test_basic_tokens_match_the_tokenizer_split():
    assert basic_tokens('我很满意 CPU abc123！ok') == ['我', '很', '满', '意', 'cpu', 'abc123', '！', 'ok']


    assert saved['steps'] == state['steps'] == 60
    assert [h['steps'] for h in saved['history']] == [20, 40, 60]
    assert saved['hours'] >= hours
    assert saved['tokens_seen'] == 60 * 4 * 32
    assert resume_iterations(out) == 60
    assert not np.array_equal(ckpt_weights(out)['cls/predictions/output_bias'], resumed['cls/predictions/output_bias'])
