"""pet_keras.pretrain and the corpus vocabulary (pet_keras.corpus): the vocabulary, batches, and short pretraining runs
(a tiny model: 2 layers, hidden 32, sequences of 32, batches of 4)."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import fcntl
import hashlib
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from bert4keras.tokenizers import Tokenizer

from pet_keras import runlock
from pet_keras.batching import positions_batch
from pet_keras.corpus import SPECIAL_TOKENS, basic_tokens, build_vocab, tokenize_corpus
from pet_keras.model import build_mlm, load_tokenizer
from pet_keras.pretrain import BlockBatches, pretrain

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
    'vocab_size': None,
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
RUN = dict(
    config=CONFIG,
    batch_size=4,
    seq_len=32,
    save_every=20,
    warmup=1,
    learning_rate=5e-3,
    heldout_blocks=8,
    vocab_size=300,
)


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
    text = ''.join(chr(0x4E00 + i) * (i + 1) for i in range(60))  # character i appears i+1 times
    vocab = build_vocab([text], max_size=40, min_count=1, unused=5)
    assert len(vocab) == 40
    body = vocab[10:]
    assert body == [chr(0x4E00 + i) for i in range(59, 29, -1)]  # the 30 most frequent, descending
    assert len(vocab) == len(set(vocab))
    assert build_vocab([text], max_size=1000, min_count=50, unused=0)[5:] == [
        chr(0x4E00 + i) for i in range(59, 48, -1)
    ]


def test_build_vocab_ties_are_deterministic():
    a = build_vocab(['甲乙丙丁', '丁丙乙甲'], min_count=1, unused=0)
    b = build_vocab(['丁丙乙甲', '甲乙丙丁'], min_count=1, unused=0)
    assert a == b


def test_tokenizer_on_built_vocab_has_no_unk_for_seen_characters():
    vocab = build_vocab(DOCS, min_count=1)
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    for sentence in [
        '我很满意这次的服务，感觉很好。',
        'The CPU model abc123 is fast.',
        '今天CPU很好abc，model fast。',
        'cpu MODEL ab12 is',
    ]:
        ids = tokenizer.encode(sentence)[0]
        assert tokenizer._token_unk_id not in ids, (sentence, tokenizer.tokenize(sentence))
    assert tokenizer.tokenize('CPU abc123')[1:-1] == ['c', '##p', '##u', 'a', '##b', '##c', '##1', '##2', '##3']
    assert tokenizer.encode('龘')[0][1:-1] == [tokenizer._token_unk_id]  # never seen


def test_basic_tokens_match_the_tokenizer_split():
    assert basic_tokens('我很满意 CPU abc123！ok') == ['我', '很', '满', '意', 'cpu', 'abc123', '！', 'ok']


def test_build_vocab_agrees_with_tokenizer_on_format_characters():
    docs = ['ab\u200bcd'] * 3
    vocab = build_vocab(docs, min_count=1, unused=0)
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    assert tokenizer._token_unk_id not in tokenizer.encode(docs[0])[0]


def test_build_vocab_refuses_a_size_without_room():
    with pytest.raises(ValueError, match='no room'):
        build_vocab(DOCS, max_size=10, unused=20)


def test_positions_batch_gathers_targets_and_pads_to_16():
    sources = np.array([[2, 4, 5, 6, 3], [2, 7, 8, 3, 0]], dtype='int32')
    targets = np.array([[0, 9, 0, 11, 0], [0, 0, 12, 0, 0]])
    ids, positions, gathered = positions_batch(sources, targets)
    assert positions.shape == gathered.shape == (2, 16)
    assert positions[0, :2].tolist() == [1, 3] and gathered[0, :2].tolist() == [9, 11]
    assert positions[1, :1].tolist() == [2] and gathered[1, :1].tolist() == [12]
    assert (gathered[0, 2:] == 0).all() and (gathered[1, 1:] == 0).all()
    np.testing.assert_array_equal(ids, sources)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def resume_iterations(out):
    reader = tf.train.load_checkpoint(os.path.join(out, 'resume'))
    name = next(n for n in reader.get_variable_to_shape_map() if n.startswith('optimizer/iter'))
    return int(reader.get_tensor(name))


def test_pretraining_lowers_the_loss_and_writes_a_loadable_checkpoint(tmp_path):
    out = str(tmp_path / 'mlm')
    tf.random.set_seed(0)
    state = pretrain(out, DOCS, steps=40, **RUN)
    losses = [h['train_loss'] for h in state['history']]
    assert [h['steps'] for h in state['history']] == [20, 40]
    assert losses[-1] < losses[0] and losses[-1] < math.log(state['vocab_size'])  # below a uniform guess
    with open(os.path.join(out, 'pretraining.json'), encoding='utf-8') as f:
        saved = json.load(f)
    assert saved['steps'] == 40 and saved['tokens_seen'] == 40 * 4 * 32
    for name, digest in saved['sha256'].items():
        assert sha256(os.path.join(out, name)) == digest
    config_path = os.path.join(out, 'bert_config.json')
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    tokenizer = load_tokenizer(os.path.join(out, 'vocab.txt'), config, config_path)
    mlm = build_mlm(config_path, os.path.join(out, 'bert_model.ckpt'))
    ids, segments = tokenizer.encode(SENTENCES[0])
    ids[3] = tokenizer._token_mask_id
    logits = mlm.full_model.predict([np.array([ids]), np.array([segments])], verbose=0)
    again = build_mlm(config_path, os.path.join(out, 'bert_model.ckpt'))
    np.testing.assert_allclose(
        again.full_model.predict([np.array([ids]), np.array([segments])], verbose=0), logits, rtol=1e-5, atol=1e-5
    )


def test_a_resumed_run_continues_from_its_step(tmp_path, capsys):
    out = str(tmp_path / 'mlm')
    pretrain(out, DOCS, steps=20, **RUN)
    state = pretrain(out, DOCS, steps=40, **RUN)
    assert 'resuming at step 20' in capsys.readouterr().out
    assert [h['steps'] for h in state['history']] == [20, 40]
    assert resume_iterations(out) == 40
    # without the optimizer state (a fresh machine): continue from the saved weights
    import shutil

    shutil.rmtree(os.path.join(out, 'resume'))
    state = pretrain(out, DOCS, steps=60, **RUN)
    assert 'continuing from the saved weights at step 40' in capsys.readouterr().out
    assert [h['steps'] for h in state['history']] == [20, 40, 60]
    assert resume_iterations(out) == 60


def test_a_resumed_run_keeps_its_recipe_and_says_what_it_ignores(tmp_path, capsys):
    out = str(tmp_path / 'mlm')
    first = pretrain(out, DOCS, steps=20, **RUN)
    assert first['heldout_blocks'] == 8
    changed = dict(RUN, batch_size=8, heldout_blocks=16, learning_rate=1e-3)
    state = pretrain(out, DOCS, steps=40, **changed)
    printed = capsys.readouterr().out
    assert 'continues its recorded recipe' in printed
    for note in ('batch_size 8 (recorded 4)', 'heldout_blocks 16 (recorded 8)', 'learning_rate 0.001 (recorded 0.005)'):
        assert note in printed, note
    assert (state['batch_size'], state['heldout_blocks'], state['learning_rate']) == (4, 8, 5e-3)
    assert state['tokens_seen'] == 40 * 4 * RUN['seq_len']
    # the held-out split and its masks are the first run's: the same accuracy on the same weights
    assert state['history'][0]['heldout_masked_accuracy'] == first['history'][0]['heldout_masked_accuracy']
    assert state['heldout_masked_tokens'] == first['heldout_masked_tokens']


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / 'mlm'
    out.mkdir()
    with open(out / runlock.LOCK, 'w') as holder:  # another run holds the folder's lock
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write('4242\n')
        holder.flush()
        with pytest.raises(runlock.FolderLocked, match=r'another run \(process 4242\)'):
            pretrain(str(out), DOCS, steps=20, **RUN)
        assert os.listdir(out) == [runlock.LOCK]  # nothing written beside the holder's lock


def test_a_corpus_too_small_is_refused(tmp_path):
    with pytest.raises(ValueError, match='corpus too small'):
        pretrain(str(tmp_path / 'mlm'), DOCS[:3], steps=20, **RUN)


def test_tokenize_corpus_joins_documents_with_sep_and_numbers_words():
    vocab = build_vocab(DOCS, min_count=1)
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    docs = ['我们去公园散步。', '今天天气很好']
    ids, words = tokenize_corpus(docs, tokenizer, whole_word=True)
    assert len(ids) == len(words) == 8 + 1 + 6 + 1
    assert ids[8] == ids[-1] == tokenizer._token_end_id
    assert words[1] == words[0]  # 我们 is one jieba word
    assert len(set(words[:8].tolist())) < 8
    plain_ids, plain_words = tokenize_corpus(docs, tokenizer)
    np.testing.assert_array_equal(plain_ids, ids)
    assert len(set(plain_words.tolist())) == len(plain_words)  # one "word" per token


def test_block_batches_are_the_same_for_the_same_step():
    vocab = build_vocab(DOCS, min_count=1)
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    ids, words = tokenize_corpus(DOCS, tokenizer)
    blocks = BlockBatches(ids, words, tokenizer, seq_len=32, batch_size=4, blocks=np.arange(20), seed=3)
    (a, _, pa, ta), _ = blocks.batch(7)
    (b, _, pb, tb), _ = blocks.batch(7)
    (c, _, _, _), _ = blocks.batch(8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta, tb)
    assert a.shape == (4, 32) and not np.array_equal(a, c)
    assert (a[:, 0] == tokenizer._token_start_id).all() and (a[:, -1] == tokenizer._token_end_id).all()


def test_a_new_run_never_writes_over_or_removes_a_users_vocabulary(tmp_path):
    out = tmp_path / 'mlm'
    out.mkdir()
    (out / 'vocab.txt').write_text('mine\n', encoding='utf-8')
    for docs in (DOCS, DOCS[:3]):  # refused before anything is written, and not removed by a refused run
        with pytest.raises(FileExistsError, match='holds vocab.txt but no pretraining.json'):
            pretrain(str(out), docs, steps=20, **RUN)
        assert (out / 'vocab.txt').read_text(encoding='utf-8') == 'mine\n'
        assert os.listdir(out) == ['vocab.txt']
