"""pet_keras.model: loading Google-format checkpoints, and the models built on them."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import bert_variable_shapes, write_folder, write_random_checkpoint
from pet_keras.model import build_mlm, checkpoint_variables, load_tokenizer

ATOL = 1e-5


def attention_weights(layer):
    """{'q_dense/kernel': value, ...} of a bert4keras MultiHeadAttention layer."""
    out = {}
    for part in ('q', 'k', 'v', 'o'):
        dense = getattr(layer, part + '_dense')
        out[part + '_dense/kernel'] = dense.kernel.numpy()
        out[part + '_dense/bias'] = dense.bias.numpy()
    return out


def weights_by_name(layer):
    """{short name: numpy value} of a plain layer's weights ('kernel', 'beta', ...)."""
    return {w.name.split(':')[0].rsplit('/', 1)[-1]: w.numpy() for w in layer.weights}


def sample_inputs(tokenizer, texts, maxlen=24):
    from bert4keras.snippets import sequence_padding

    ids, segs = [], []
    for text in texts:
        t, s = tokenizer.encode(text, maxlen=maxlen)
        ids.append(t)
        segs.append(s)
    return sequence_padding(ids).astype('int32'), sequence_padding(segs).astype('int32')


@pytest.fixture(scope='module')
def loaded(tiny_checkpoint):
    return build_mlm(tiny_checkpoint['config_path'], tiny_checkpoint['checkpoint_path'])


@pytest.fixture(scope='module')
def tokenizer(tiny_checkpoint):
    return load_tokenizer(tiny_checkpoint['dict_path'], tiny_checkpoint['config'], tiny_checkpoint['config_path'])


@pytest.fixture(scope='module')
def batch(tokenizer):
    return sample_inputs(tokenizer, ['很满意，感觉好', '新闻体育财经如何理想', '不好abc'])


def test_checkpoint_written_with_google_names(tiny_checkpoint):
    names = checkpoint_variables(tiny_checkpoint['checkpoint_path'])
    V = len(tiny_checkpoint['vocab'])
    assert names['bert/embeddings/word_embeddings'] == (V, 32)
    assert names['cls/predictions/output_bias'] == (V,)
    assert names['cls/seq_relationship/output_weights'] == (2, 32)
    assert names['bert/encoder/layer_1/attention/self/query/kernel'] == (32, 32)
    assert len(names) == len(tiny_checkpoint['values'])


def test_loaded_weights_equal_written_values(loaded, tiny_checkpoint):
    values = tiny_checkpoint['values']
    emb = loaded.layers['Embedding-Token'].embeddings.numpy()
    np.testing.assert_allclose(emb, values['bert/embeddings/word_embeddings'], atol=0)

    att = attention_weights(loaded.layers['Transformer-1-MultiHeadSelfAttention'])
    for part in ('query', 'key', 'value'):
        short = part[0] + '_dense'
        np.testing.assert_allclose(
            att[short + '/kernel'], values['bert/encoder/layer_1/attention/self/%s/kernel' % part], atol=0
        )
        np.testing.assert_allclose(
            att[short + '/bias'], values['bert/encoder/layer_1/attention/self/%s/bias' % part], atol=0
        )
    np.testing.assert_allclose(
        att['o_dense/kernel'], values['bert/encoder/layer_1/attention/output/dense/kernel'], atol=0
    )

    dense = weights_by_name(loaded.layers['MLM-Dense'])
    np.testing.assert_allclose(dense['kernel'], values['cls/predictions/transform/dense/kernel'], atol=0)
    np.testing.assert_allclose(dense['bias'], values['cls/predictions/transform/dense/bias'], atol=0)
    norm = weights_by_name(loaded.layers['MLM-Norm'])
    np.testing.assert_allclose(norm['gamma'], values['cls/predictions/transform/LayerNorm/gamma'], atol=0)
    np.testing.assert_allclose(loaded.layers['MLM-Bias'].beta.numpy(), values['cls/predictions/output_bias'], atol=0)


def test_random_init_gives_distinct_attention_kernels(tiny_checkpoint):
    tf.random.set_seed(123)
    mlm = build_mlm(tiny_checkpoint['config_path'])
    att = attention_weights(mlm.layers['Transformer-0-MultiHeadSelfAttention'])
    kernels = [att[k + '_dense/kernel'] for k in 'qkvo']
    for i in range(4):
        assert kernels[i].std() > 0.005  # ~truncated normal(0.02), not zeros
        for j in range(i + 1, 4):
            assert not np.allclose(kernels[i], kernels[j]), 'kernels %s and %s are identical' % ('qkvo'[i], 'qkvo'[j])
    # the two layers differ too, and the embedding table is not a copy of a kernel
    other = attention_weights(mlm.layers['Transformer-1-MultiHeadSelfAttention'])['q_dense/kernel']
    assert not np.allclose(kernels[0], other)


def test_random_init_follows_tf_seed(tiny_checkpoint):
    tf.random.set_seed(7)
    a = build_mlm(tiny_checkpoint['config_path']).layers['Embedding-Token'].embeddings.numpy()
    tf.random.set_seed(7)
    b = build_mlm(tiny_checkpoint['config_path']).layers['Embedding-Token'].embeddings.numpy()
    np.testing.assert_array_equal(a, b)


def test_missing_mlm_head_is_refused(tiny_checkpoint_no_head):
    ckpt = tiny_checkpoint_no_head
    with pytest.raises(ValueError) as e:
        build_mlm(ckpt['config_path'], ckpt['checkpoint_path'])
    message = str(e.value)
    assert 'cls/predictions/output_bias' in message
    assert 'allow_random_mlm_head' in message


def test_missing_mlm_head_loads_when_allowed(tiny_checkpoint_no_head):
    ckpt = tiny_checkpoint_no_head
    mlm = build_mlm(ckpt['config_path'], ckpt['checkpoint_path'], allow_random_mlm_head=True)
    np.testing.assert_allclose(
        mlm.layers['Embedding-Token'].embeddings.numpy(), ckpt['values']['bert/embeddings/word_embeddings'], atol=0
    )
    ffn = [w.numpy() for w in mlm.layers['Transformer-0-FeedForward'].trainable_weights]
    np.testing.assert_array_equal(ffn[0], ckpt['values']['bert/encoder/layer_0/intermediate/dense/kernel'])
    np.testing.assert_array_equal(ffn[2], ckpt['values']['bert/encoder/layer_0/output/dense/kernel'])
    # the head is random but present (and the output bias starts at zero)
    assert mlm.layers['MLM-Dense'].weights[0].shape == (32, 32)
    assert np.all(mlm.layers['MLM-Bias'].beta.numpy() == 0)


def test_vocab_size_mismatch_names_both_files(tiny_checkpoint, tmp_path):
    config = dict(tiny_checkpoint['config'], vocab_size=len(tiny_checkpoint['vocab']) + 5)
    config_path = tmp_path / 'bert_config.json'
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError) as e:
        load_tokenizer(tiny_checkpoint['dict_path'], config, str(config_path))
    message = str(e.value)
    assert str(config_path) in message
    assert tiny_checkpoint['dict_path'] in message
    assert str(config['vocab_size']) in message
    assert str(len(tiny_checkpoint['vocab'])) in message


def test_tokenizer_loads_when_sizes_agree(tokenizer, tiny_checkpoint):
    tokens = tokenizer.tokenize('很满意ABC')
    assert tokens == ['[CLS]', '很', '满', '意', 'a', '##b', '##c', '[SEP]']
    assert '[UNK]' not in tokens


def test_shape_mismatch_names_variable_and_shapes(tiny_checkpoint, tmp_path):
    config = dict(tiny_checkpoint['config'], hidden_size=48)
    config_path = tmp_path / 'bert_config.json'
    config_path.write_text(json.dumps(config))
    V = len(tiny_checkpoint['vocab'])
    with pytest.raises(ValueError) as e:
        build_mlm(str(config_path), tiny_checkpoint['checkpoint_path'])
    message = str(e.value)
    assert tiny_checkpoint['checkpoint_path'] in message
    assert 'bert/embeddings/word_embeddings' in message
    assert str((V, 32)) in message and str((V, 48)) in message
    assert 'bert/encoder/layer_0/attention/self/query/kernel' in message
    assert 'checkpoint (32, 32), model (from config) (48, 48)' in message


def test_missing_body_variable_is_named(tiny_vocab, tmp_path):
    shapes = bert_variable_shapes(len(tiny_vocab))
    del shapes['bert/encoder/layer_1/output/dense/kernel']
    folder = write_folder(tmp_path, tiny_vocab)  # config + vocab
    write_random_checkpoint(folder['checkpoint_path'], shapes)
    with pytest.raises(ValueError, match='bert/encoder/layer_1/output/dense/kernel'):
        build_mlm(folder['config_path'], folder['checkpoint_path'], allow_random_mlm_head=True)


def test_unreadable_checkpoint(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match='not a readable TF checkpoint'):
        build_mlm(tiny_checkpoint['config_path'], str(tmp_path / 'nothing.ckpt'))


def test_training_model_equals_full_model_at_positions(loaded, batch):
    ids, segs = batch
    assert loaded.last_layer is not None  # the last layer runs only at the positions (BERT layout)
    assert (ids == 0).any()  # padding: its keys must stay masked in that layer
    full = loaded.full_model.predict([ids, segs], verbose=0)
    assert full.shape == (ids.shape[0], ids.shape[1], len(loaded.layers['MLM-Bias'].beta.numpy()))
    positions = np.array([[1, 2, 3, 0], [4, 5, 0, 0], [1, 3, 2, 4]], dtype='int32')
    targets = np.array([[7, 8, 9, 0], [10, 11, 0, 0], [12, 13, 14, 15]], dtype='int32')
    model = loaded.training_model()
    out = model.predict([ids, segs, positions, targets], verbose=0)
    assert out.shape == positions.shape + (full.shape[-1],)
    expected = np.take_along_axis(full, positions[:, :, None], axis=1)
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=1e-4)
    # logits, not probabilities: the full model was built with with_mlm='linear'
    assert not np.allclose(full.sum(-1), 1.0)


def test_training_model_loss_is_masked_cross_entropy(loaded, batch):
    ids, segs = batch
    positions = np.array([[1, 2, 0], [3, 0, 0], [1, 2, 4]], dtype='int32')
    targets = np.array([[7, 8, 0], [10, 0, 0], [12, 13, 14]], dtype='int32')
    model = loaded.training_model()
    model.compile(optimizer='sgd')
    logits = model.predict([ids, segs, positions, targets], verbose=0)
    logp = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    w = targets > 0
    nll = -np.take_along_axis(logp, targets[:, :, None], axis=-1)[:, :, 0]
    expected = (nll * w).sum() / w.sum()
    result = model.evaluate([ids, segs, positions, targets], verbose=0, return_dict=True)
    assert result['loss'] == pytest.approx(expected, rel=1e-4)
    accuracy = ((logits.argmax(-1) == targets) & w).sum() / w.sum()
    assert result['accuracy'] == pytest.approx(accuracy, abs=1e-6)


def test_scoring_model_sums_label_token_logits_over_slot(loaded, batch, tokenizer):
    ids, segs = batch
    words = ['很好', '不满', '体育', '财经']
    label_token_ids = np.array([tokenizer.tokens_to_ids(list(w)) for w in words])
    assert label_token_ids.shape == (4, 2) and 1 not in label_token_ids  # no [UNK]
    slots = np.array([[1, 2], [3, 4], [2, 5]], dtype='int32')
    scores = loaded.scoring_model(label_token_ids).predict([ids, segs, slots], verbose=0)
    full = loaded.full_model.predict([ids, segs], verbose=0)
    expected = np.zeros((len(ids), len(words)))
    for b in range(len(ids)):
        for w in range(len(words)):
            expected[b, w] = sum(full[b, slots[b, s], label_token_ids[w, s]] for s in range(2))
    assert scores.shape == (3, 4)
    np.testing.assert_allclose(scores, expected, atol=ATOL, rtol=1e-4)


def test_save_checkpoint_round_trip(loaded, batch, tiny_checkpoint, tmp_path):
    ids, segs = batch
    # change the weights so a reload of the original checkpoint would not match
    bias = loaded.layers['MLM-Bias'].beta
    original_bias = bias.numpy()
    bias.assign(original_bias + np.linspace(-1, 1, original_bias.shape[0]).astype('float32'))
    try:
        before = loaded.full_model.predict([ids, segs], verbose=0)
        out = tmp_path / 'saved'
        loaded.save_checkpoint(str(out), tiny_checkpoint['config'], tiny_checkpoint['dict_path'])
        assert (out / 'vocab.txt').read_text(encoding='utf-8') == open(
            tiny_checkpoint['dict_path'], encoding='utf-8'
        ).read()
        assert json.loads((out / 'bert_config.json').read_text()) == tiny_checkpoint['config']
        names = checkpoint_variables(str(out / 'bert_model.ckpt'))
        assert 'cls/predictions/output_bias' in names
        assert names['cls/predictions/transform/dense/kernel'] == (32, 32)
        assert names['bert/encoder/layer_1/output/LayerNorm/gamma'] == (32,)
        assert not any(n.startswith('MLM') or ':' in n for n in names)
        reloaded = build_mlm(str(out / 'bert_config.json'), str(out / 'bert_model.ckpt'))
        after = reloaded.full_model.predict([ids, segs], verbose=0)
        np.testing.assert_allclose(after, before, atol=1e-6)
        np.testing.assert_array_equal(reloaded.layers['MLM-Bias'].beta.numpy(), bias.numpy())
        # and the reader sees exactly what was saved
        reader = tf.train.load_checkpoint(str(out / 'bert_model.ckpt'))
        np.testing.assert_array_equal(reader.get_tensor('cls/predictions/output_bias'), bias.numpy())
    finally:
        bias.assign(original_bias)


# ---------------------------------------------------------------- real layouts


def real_layout(shared_dir, name):
    folder = shared_dir / 'reference' / name
    if not folder.is_dir():
        pytest.skip('%s not present' % folder)
    return folder


@pytest.mark.parametrize('optimizer_slots', [False, True], ids=['weights-only', 'with-adam-and-global-step'])
def test_google_albert_tiny_layout_loads(shared_dir, tmp_path, optimizer_slots):
    folder = real_layout(shared_dir, 'albert_tiny_zh_google')
    config_path = folder / 'albert_config_tiny_g.json'
    shapes = dict(tf.train.list_variables(str(folder / 'albert_model.ckpt')))
    assert 'cls/predictions/output_bias' in shapes
    if not optimizer_slots:
        shapes = {n: s for n, s in shapes.items() if not n.endswith(('/adam_m', '/adam_v')) and n != 'global_step'}
    values = write_random_checkpoint(tmp_path / 'albert_model.ckpt', shapes, seed=3)
    mlm = build_mlm(str(config_path), str(tmp_path / 'albert_model.ckpt'), model='albert')
    np.testing.assert_array_equal(mlm.layers['MLM-Bias'].beta.numpy(), values['cls/predictions/output_bias'])
    np.testing.assert_array_equal(
        mlm.layers['Embedding-Token'].embeddings.numpy(), values['bert/embeddings/word_embeddings']
    )
    att = attention_weights(mlm.layers['Transformer-MultiHeadSelfAttention'])
    np.testing.assert_array_equal(
        att['q_dense/kernel'], values['bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel']
    )
    # the standard Chinese vocabulary fits this config
    vocab = shared_dir / 'reference' / 'chinese_bert_vocab.txt'
    if vocab.is_file():
        config = json.loads(config_path.read_text())
        tokenizer = load_tokenizer(str(vocab), config, str(config_path))
        assert '[UNK]' not in tokenizer.tokenize('很满意')


def brightmart_error(shared_dir, tmp_path):
    folder = real_layout(shared_dir, 'albert_tiny_zh')
    config_path = folder / 'albert_config_tiny.json'
    shapes = dict(tf.train.list_variables(str(folder / 'albert_model.ckpt')))
    assert any('layer_shared' in n for n in shapes)
    write_random_checkpoint(tmp_path / 'albert_model.ckpt', shapes, seed=4)
    with pytest.raises(ValueError) as e:
        build_mlm(str(config_path), str(tmp_path / 'albert_model.ckpt'), model='albert')
    return str(e.value).replace(str(tmp_path), '<tmp>')  # the path names this test


def test_brightmart_albert_layout_is_refused(shared_dir, tmp_path):
    message = brightmart_error(shared_dir, tmp_path)
    assert '<tmp>/albert_model.ckpt' in message


def test_brightmart_albert_layout_is_explained(shared_dir, tmp_path):
    message = brightmart_error(shared_dir, tmp_path)
    assert "brightmart's early ALBERT layout" in message
    assert 'google' in message.lower()


@pytest.mark.parametrize(
    'imports, message',
    [
        ('import tensorflow; import pet_keras', 'Keras 3 is already loaded'),
        ('import bert4keras.backend; import pet_keras', 'import pet_keras before bert4keras'),
    ],
)
def test_wrong_import_order_is_a_clear_error(imports, message):
    env = {k: v for k, v in os.environ.items() if k not in ('TF_KERAS', 'TF_USE_LEGACY_KERAS')}
    result = subprocess.run([sys.executable, '-c', imports], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_tensorflow_first_works_with_legacy_keras_set():
    env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
    code = 'import tensorflow; import pet_keras; import bert4keras.layers; print(bert4keras.layers.Input.__module__)'
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().startswith('tf_keras'), result.stderr[-2000:]
