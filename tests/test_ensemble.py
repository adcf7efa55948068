"""Full PET pieces: the pattern ensemble, softened targets, iPET's selection,
the [CLS] classifier (baseline and distillation student) and the script."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pet_keras.classifier import build_classifier, fit_classifier, one_hot
from pet_keras.ensemble import accuracy, confident_examples, ensemble_proba, soften
from tiny import ex, make_mlm, make_tokenizer, write_vocab
from test_predict_train import seed_all, task

REPO = Path(__file__).resolve().parents[1]
LABELS = ['negative', 'positive']


def test_ensemble_is_the_weighted_mean():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_allclose(ensemble_proba([a, b]), (a + b) / 2)
    np.testing.assert_allclose(ensemble_proba([a, b], [3, 1]), 0.75 * a + 0.25 * b)
    # weights are relative: validation accuracies work as they are
    np.testing.assert_allclose(ensemble_proba([a, b], [0.9, 0.3]), ensemble_proba([a, b], [3, 1]))


@pytest.mark.parametrize('weights', [[1], [1, -1], [0, 0]])
def test_ensemble_refuses_bad_weights(weights):
    a = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match='weight'):
        ensemble_proba([a, a], weights)


def test_soften_keeps_the_argmax_and_moves_entropy_with_the_temperature():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])
    np.testing.assert_allclose(soften(p, 1.0), p, rtol=1e-9)

    def entropy(q):
        return -(q * np.log(q)).sum(1)

    for t in (0.5, 2.0, 5.0):
        q = soften(p, t)
        np.testing.assert_allclose(q.sum(1), 1)
        assert (q.argmax(1) == p.argmax(1)).all()
        assert ((entropy(q) > entropy(p)) if t > 1 else (entropy(q) < entropy(p))).all(), t
    # p^(1/T) renormalised
    np.testing.assert_allclose(soften(p, 2.0), np.sqrt(p) / np.sqrt(p).sum(1, keepdims=True))
    with pytest.raises(ValueError, match='temperature'):
        soften(p, 0)


def test_confident_examples_are_the_most_confident_per_predicted_class():
    examples = [ex('t%d' % i, None, 'u:%d' % i) for i in range(6)]
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01]])
    chosen = confident_examples(examples, probs, LABELS, per_class=2)
    assert [(e.fields['text'], e.label) for e in chosen] == [
        ('t0', 'negative'),
        ('t5', 'negative'),
        ('t2', 'positive'),
        ('t3', 'positive'),
    ]
    # a class the ensemble predicts for fewer examples yields fewer
    chosen = confident_examples(examples, probs, LABELS, per_class=10)
    assert sum(e.label == 'negative' for e in chosen) == 3 and sum(e.label == 'positive' for e in chosen) == 3
    assert all(e.source.startswith('u:') for e in chosen)


def test_accuracy_and_one_hot():
    examples = [ex('a', 'positive'), ex('b', 'negative'), ex('c', 'positive')]
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
    assert accuracy(probs, examples, LABELS) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(one_hot(examples, LABELS), [[0, 1], [1, 0], [0, 1]])
    with pytest.raises(ValueError, match='neutral'):
        one_hot([ex('d', 'neutral')], LABELS)


@pytest.fixture(scope='module')
def tiny_folder(tmp_path_factory):
    """A tiny random Google-format checkpoint folder over the tiny vocabulary."""
    folder = tmp_path_factory.mktemp('tiny_ckpt')
    vocab = write_vocab(folder / 'vocab_src.txt')
    seed_all(0)
    mlm = make_mlm(len(make_tokenizer()._token_dict), folder / 'build', hidden=64, intermediate=128)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, vocab)
    return folder / 'ckpt'


def test_classifier_starts_from_the_checkpoint(tiny_folder):
    import tensorflow as tf

    model = build_classifier(str(tiny_folder / 'bert_config.json'), str(tiny_folder / 'bert_model.ckpt'), 3)
    stored = tf.train.load_variable(str(tiny_folder / 'bert_model.ckpt'), 'bert/embeddings/word_embeddings')
    np.testing.assert_array_equal(model.get_layer('Embedding-Token').get_weights()[0], stored)
    assert model.output_shape == (None, 3)


def fit_on(tiny_folder, train, valid, test, targets, out_dir):
    seed_all(0)
    model = build_classifier(str(tiny_folder / 'bert_config.json'), str(tiny_folder / 'bert_model.ckpt'), 2)
    steps = -(-len(train) // 16)  # an evaluation per pass over the training set
    return fit_classifier(
        model,
        make_tokenizer(),
        LABELS,
        train,
        valid,
        test,
        targets,
        steps=12 * steps,
        eval_every=steps,
        learning_rate=3e-3,
        batch_size=16,
        maxlen=32,
        patience=12,
        out_dir=out_dir,
        verbose=0,
    )


def test_classifier_learns_from_hard_and_from_soft_targets(tiny_folder, tmp_path):
    train, valid, test = task(0)
    hard = fit_on(tiny_folder, train, valid, test, None, str(tmp_path / 'hard'))
    assert hard['test'] >= 0.8 and hard['valid'] >= 0.8
    saved = json.loads((tmp_path / 'hard' / 'results.json').read_text(encoding='utf-8'))
    assert saved['test'] == hard['test'] and saved['train_examples'] == len(train)
    # its step 0 is a random head, not a zero-shot result, and is named so
    assert 'zero_shot' not in saved and set(saved['step_0']) == {'valid'}
    assert (tmp_path / 'hard' / 'classifier_weights.h5').is_file()

    # soft targets are what it learns from: a teacher that is confidently wrong teaches the wrong labels
    wrong = soften(1 - one_hot(train, LABELS) * 0.8 - 0.1, 1.0)
    taught = fit_on(tiny_folder, train, valid, test, wrong, str(tmp_path / 'wrong'))
    assert len(taught['evaluations']) == 12 and taught['evaluations'][-1]['valid'] < 0.3


def test_classifier_refuses_targets_of_the_wrong_shape(tiny_folder, tmp_path):
    train, valid, test = task(0, n_train=8, n_eval=4)
    with pytest.raises(ValueError, match=r'targets must have shape \(8, 2\)'):
        fit_on(tiny_folder, train, valid, test, np.full((7, 2), 0.5), str(tmp_path / 'bad'))


def test_ensemble_script_runs_pet_ipet_and_distillation(tiny_folder, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    data.mkdir()
    for split, n in (('train', 200), ('valid', 16), ('test', 16)):
        train = task(int(rng.integers(1000)), n_train=n, n_eval=1)[0]
        lines = ['%s\t%d' % (e.fields['text'], e.label == 'positive') for e in train]
        (data / ('sentiment.%s.data' % split)).write_text('\n'.join(lines) + '\n', encoding='utf-8')
    out = tmp_path / 'run'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))

    def ensemble(*flags):
        return subprocess.run(
            [
                sys.executable,
                str(REPO / 'scripts' / 'sentiment_ensemble.py'),
                '--checkpoint-dir',
                str(tiny_folder),
                '--data-dir',
                str(data),
                '--labeled-fraction',
                '0.05',
                '--patterns',
                'P1',
                'P2',
                '--steps',
                '2',
                '--eval-every',
                '2',
                '--lr',
                '1e-4',
                '--generations',
                '1',
                '--growth',
                '2',
                '--maxlen',
                '32',
                '--out',
                str(out),
                '--max-unlabeled',
                '150',
                *flags,
            ],
            cwd=str(REPO),
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    result = ensemble()
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(labeled 10, unlabeled 150),' in result.stdout and 'loading the finished run' not in result.stdout
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    first, second = results['generations']
    assert first['labeled'] == 10
    assert 10 < second['labeled'] <= 10 + 2 * 10  # iPET added up to growth x labeled pseudo-labels
    for record in (first, second):
        for name in ('P1', 'P2', 'ensemble'):
            assert 0 <= record[name]['valid'] <= 1 and 0 <= record[name]['test'] <= 1
    assert 0 <= results['distilled']['test'] <= 1
    for generation in (0, 1):
        for name in ('P1', 'P2'):
            assert (out / ('generation-%d' % generation) / name / 'pvp.json').is_file()
    assert (out / 'distilled' / 'results.json').is_file()
    assert '| distilled classifier |' in result.stdout

    # the same command again loads every finished run, the distillation's too, instead of training it
    distilled = (out / 'distilled' / 'results.json').read_bytes()
    again = ensemble()
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count('loading the finished run') == 5 and 'zero-shot evaluation' not in again.stdout
    assert 'distillation: loading the finished run' in again.stdout
    assert (out / 'distilled' / 'results.json').read_bytes() == distilled
    rerun = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    for record, before in zip(rerun['generations'], results['generations']):
        assert {k: record[k] for k in ('P1', 'P2', 'labeled')} == {k: before[k] for k in ('P1', 'P2', 'labeled')}
    assert rerun['distilled'] == results['distilled']

    # a model trains the same whether the models before it trained or were loaded: each starts from the seed
    def losses(folder):
        return [r['loss'] for r in json.loads((folder / 'results.json').read_text(encoding='utf-8'))['evaluations']]

    trained = {name: losses(out / name) for name in ('generation-1/P2', 'distilled')}
    for name in trained:
        shutil.rmtree(out / name)
    again = ensemble()
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count('loading the finished run') == 3
    assert {name: losses(out / name) for name in trained} == trained

    # a distillation made with other settings: refused before any pattern is loaded or trained
    distilled = (out / 'distilled' / 'results.json').read_bytes()
    other = ensemble('--temperature', '3')
    assert other.returncode == 2 and 'holds a finished run with other settings' in other.stderr
    assert 'temperature: 2.0, now 3.0' in other.stderr and 'loading the finished run' not in other.stdout
    assert (out / 'distilled' / 'results.json').read_bytes() == distilled

    # other training settings: refused, nothing overwritten
    weights = (out / 'generation-0' / 'P1' / 'bert_model.ckpt.data-00000-of-00001').read_bytes()
    other = ensemble('--lr', '0.5')
    assert other.returncode == 2 and 'holds a finished run with other settings' in other.stderr
    assert 'learning_rate: 0.0001, now 0.5' in other.stderr
    assert (out / 'generation-0' / 'P1' / 'bert_model.ckpt.data-00000-of-00001').read_bytes() == weights


@pytest.mark.parametrize('flag', [['--resume'], ['--distribute', 'mirrored']])
def test_ensemble_script_refuses_flags_it_cannot_honour(tiny_folder, tmp_path, flag):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / 'scripts' / 'sentiment_ensemble.py'),
            '--checkpoint-dir',
            str(tiny_folder),
            '--out',
            str(tmp_path / 'run'),
        ]
        + flag,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert 'not supported for an ensemble' in result.stderr
    assert not (tmp_path / 'run').exists()
