"""Contextual calibration in pet_keras.scoring.Scorer (and fit_pet's calibrate)."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from pet_keras.data import Example
from pet_keras.pattern import PVP
from pet_keras.scoring import CONTENT_FREE_TEXTS, Scorer
from pet_keras.train import fit_pet
from tiny import ex, sharpened_mlm, write_vocab

WORDS = {'positive': '很', 'negative': '不', 'neutral': '理'}
TEXTS = [
    '春夏花草风雨',
    '秋冬石木山水',
    '我你他她们',
    '红黄蓝白黑',
    '东西南北',
    '早晚前后左右里外',
    '开关生死明暗',
    '天年日月水火山石',
]


@pytest.fixture
def sharp(tok, tmp_path):
    """A random tiny model with input-dependent, far-from-uniform slot distributions."""
    tf.random.set_seed(3)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path / 'sharp', dict_path=write_vocab(tmp_path / 'vocab.txt'), seed=7)
    return mlm


def add_bias(mlm, tok, word, value):
    """Shift one token's output bias: every input's logit for ``word`` moves by ``value``."""
    bias = mlm.layers['MLM-Bias']
    values = bias.get_weights()
    values[0][tok.token_to_id(word)] += value
    bias.set_weights(values)


def examples(texts=TEXTS):
    return [ex(t, source='t:%d' % i) for i, t in enumerate(texts, 1)]


def test_content_free_input_is_uniform_after_calibration(tok, sharp):
    for template, fields in (('____满意。{text}', ('text',)), ('{a}？____，{b}', ('a', 'b'))):
        pvp = PVP(template, WORDS, tok, 32)
        empty = [Example({name: '' for name in fields}, None, 'empty')]
        raw = Scorer(sharp, pvp).predict_proba(empty, verbose=False)[0]
        assert np.abs(raw - 1 / 3).max() > 0.05, raw  # not uniform before: the check below means something
        calibrated = Scorer(sharp, pvp, calibrate=True, content_free=('',)).predict_proba(empty, verbose=False)[0]
        np.testing.assert_allclose(calibrated, np.full(3, 1 / 3), atol=1e-5)


def test_default_content_free_inputs_are_averaged_and_rows_sum_to_one(tok, sharp):
    assert CONTENT_FREE_TEXTS == ('', 'N/A')
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    raw = Scorer(sharp, pvp).predict_proba(examples(), verbose=False)
    free = Scorer(sharp, pvp).predict_proba([ex(''), ex('N/A')], verbose=False)
    assert np.abs(free[0] - free[1]).max() > 0.01  # two different content-free distributions
    scorer = Scorer(sharp, pvp, calibrate=True)
    np.testing.assert_allclose(np.exp(scorer.content_free_log_proba()), free.mean(0), atol=1e-6)
    calibrated = scorer.predict_proba(examples(), verbose=False)
    expected = raw / free.mean(0)
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(calibrated, expected, atol=1e-5)
    np.testing.assert_allclose(calibrated.sum(1), 1, atol=1e-5)
    assert np.abs(calibrated - raw).max() > 0.01


def test_calibration_undoes_a_label_bias(tok, sharp):
    """A bias on one label word's output shifts that label's logit by the same
    amount for every input, so the model predicts that label everywhere.
    Calibration divides it out: with one content-free input exactly, and with
    the default two it restores varied predictions."""
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    one = dict(calibrate=True, content_free=('',))
    unbiased = Scorer(sharp, pvp, **one).predict_proba(examples(), verbose=False)
    assert len(set(unbiased.argmax(1))) > 1  # the calibrated model tells the texts apart

    add_bias(sharp, tok, '不', 30.0)
    raw = Scorer(sharp, pvp).predict_proba(examples(), verbose=False)
    assert (raw.argmax(1) == pvp.labels.index('negative')).all()
    np.testing.assert_allclose(Scorer(sharp, pvp, **one).predict_proba(examples(), verbose=False), unbiased, atol=1e-4)
    averaged = Scorer(sharp, pvp, calibrate=True).predict_proba(examples(), verbose=False)
    assert len(set(averaged.argmax(1))) > 1
    np.testing.assert_allclose(averaged.sum(1), 1, atol=1e-5)


def test_calibration_follows_the_current_weights(tok, sharp):
    """The content-free distribution is recomputed on every call, so a Scorer
    made before training calibrates with the trained weights."""
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    scorer = Scorer(sharp, pvp, calibrate=True)
    before = scorer.predict_proba(examples(), verbose=False)
    add_bias(sharp, tok, '很', 3.0)
    add_bias(sharp, tok, '理', -2.0)
    after = scorer.predict_proba(examples(), verbose=False)
    np.testing.assert_allclose(
        after, Scorer(sharp, pvp, calibrate=True).predict_proba(examples(), verbose=False), atol=1e-6
    )
    assert np.abs(after - before).max() > 1e-3


def test_calibration_needs_content_free_texts(tok, sharp):
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    with pytest.raises(ValueError, match='content-free'):
        Scorer(sharp, pvp, calibrate=True, content_free=())


def test_fit_pet_calibrate_evaluates_calibrated_and_records_it(tok, sharp, tmp_path):
    pvp = PVP('____满意。{text}', {'positive': '很', 'negative': '不'}, tok, 32)
    add_bias(sharp, tok, '不', 30.0)  # uncalibrated: 'negative' for everything
    labels = ['positive', 'negative'] * (len(TEXTS) // 2)
    valid = [ex(t, label, 'v:%d' % i) for i, (t, label) in enumerate(zip(TEXTS, labels), 1)]
    raw = Scorer(sharp, pvp).accuracy(valid, verbose=False)
    calibrated = Scorer(sharp, pvp, calibrate=True).accuracy(valid, verbose=False)
    assert raw == 0.5 and calibrated != raw
    plain = fit_pet(sharp, pvp, None, valid, out_dir=str(tmp_path / 'plain'), verbose=0)
    results = fit_pet(sharp, pvp, None, valid, out_dir=str(tmp_path / 'run'), verbose=0, calibrate=True)
    assert plain['zero_shot']['valid'] == raw and plain['calibrate'] is False
    assert results['zero_shot']['valid'] == calibrated and results['calibrate'] is True
    with open(os.path.join(tmp_path, 'run', 'results.json'), encoding='utf-8') as f:
        assert json.load(f)['calibrate'] is True
