"""Mixed bfloat16 precision (--mixed-precision, Keras' mixed_bfloat16 policy):
the models build, train and score with float32 weights, loss and label
scores, close to float32; LayerNorm statistics stay float32 (compat fix 6)."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)


import numpy as np
import pytest
import tensorflow as tf
from bert4keras.layers import LayerNormalization
from bert4keras.optimizers import Adam

from pet_keras import runtime
from pet_keras.compat import keras
from pet_keras.model import build_mlm, load_tokenizer
from pet_keras.pretrain import pretrain
from test_model import sample_inputs
from test_pretrain import DOCS, RUN


@pytest.fixture
def mixed():
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
    yield
    keras.mixed_precision.set_global_policy('float32')


def float32_layer_norm(x):
    keras.mixed_precision.set_global_policy('float32')
    try:
        return LayerNormalization()(x).numpy()
    finally:
        keras.mixed_precision.set_global_policy('mixed_bfloat16')


def test_layer_norm_statistics_are_float32(mixed):
    # hidden states with a large common offset: bfloat16 sums (8 significant bits)
    # would lose their mean and variance (mean error ~0.026 here before the fix)
    rng = np.random.default_rng(0)
    x = (20 + rng.standard_normal((64, 768))).astype('float32')
    x = tf.cast(tf.cast(x, 'bfloat16'), 'float32').numpy()  # what the layer sees in bfloat16
    layer = LayerNormalization()
    out = layer(x)
    assert out.dtype == tf.bfloat16 and layer.weights[0].dtype == tf.float32
    error = np.abs(tf.cast(out, 'float32').numpy() - float32_layer_norm(x))
    assert error.mean() < 0.002 and error.max() < 0.03  # bfloat16 rounding of the output only


def test_mixed_models_keep_float32_weights_loss_and_scores(mixed, tiny_checkpoint):
    paths = tiny_checkpoint['config_path'], tiny_checkpoint['checkpoint_path']
    tokenizer = load_tokenizer(tiny_checkpoint['dict_path'], tiny_checkpoint['config'], paths[0])
    ids, segments = sample_inputs(tokenizer, ['很满意，感觉好', '新闻体育财经如何理想', '不好abc'])
    slots = np.array([[1], [2], [1]], dtype='int32')
    words = np.array([[tokenizer.token_to_id('很')], [tokenizer.token_to_id('不')]])

    mlm = build_mlm(*paths)
    scores = mlm.scoring_model(words).predict([ids, segments, slots], verbose=0)
    keras.mixed_precision.set_global_policy('float32')
    float32_scores = build_mlm(*paths).scoring_model(words).predict([ids, segments, slots], verbose=0)
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, float32_scores, atol=0.05 * np.abs(float32_scores).max() + 0.02)

    model = mlm.training_model()
    model.compile(optimizer=Adam(1e-2))
    targets = np.array([[ids[0, 1]], [ids[1, 2]], [ids[2, 1]]], dtype='int32')
    x = [ids, segments, slots, targets]
    losses = [model.train_on_batch(x, return_dict=True)['loss'] for _ in range(15)]
    assert model.output.dtype == tf.float32
    assert all(w.dtype == tf.float32 for w in model.trainable_weights)
    assert losses[-1] < 0.5 * losses[0]


def test_mixed_pretraining_records_its_policy_and_lowers_the_loss(mixed, tmp_path):
    tf.random.set_seed(0)
    state = pretrain(str(tmp_path / 'mlm'), DOCS, steps=40, **RUN)
    assert [h['dtype_policy'] for h in state['history']] == ['mixed_bfloat16'] * 2
    assert state['history'][-1]['train_loss'] < state['history'][0]['train_loss']


def test_cpu_has_amx_reads_the_cpuinfo_flags(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n\n')
    assert runtime.cpu_has_amx(cpuinfo) is True
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n')
    assert runtime.cpu_has_amx(cpuinfo) is False
    cpuinfo.write_text('processor\t: 0\nmodel name\t: some CPU\n')  # no flags line (not x86)
    assert runtime.cpu_has_amx(cpuinfo) is None
    assert runtime.cpu_has_amx(tmp_path / 'absent') is None


@pytest.mark.parametrize(
    'mixed_precision, has_amx, warns',
    [(True, False, True), (True, True, False), (True, None, False), (False, False, False)],
)
def test_mixed_precision_warns_only_on_a_cpu_known_to_lack_amx(monkeypatch, capsys, mixed_precision, has_amx, warns):
    monkeypatch.setattr(runtime, 'cpu_has_amx', lambda: has_amx)
    try:
        runtime.set_precision(mixed_precision)
        assert keras.mixed_precision.global_policy().name == ('mixed_bfloat16' if mixed_precision else 'float32')
    finally:
        keras.mixed_precision.set_global_policy('float32')
    assert ('CPU without AMX' in capsys.readouterr().err) == warns
