"""pet_keras.scoring (Scorer) and pet_keras.train (training_sets, fit_pet),
including an end-to-end run in which a tiny random model learns a task."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import inspect
import json
import os

import h5py
import numpy as np
import pytest
import tensorflow as tf

from pet_keras import budget, cli
from pet_keras.compat import keras
from pet_keras.batching import PetDataGenerator
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import PVP
from pet_keras.runstate import BEST_WEIGHTS
from pet_keras.scoring import Scorer
from pet_keras.modes import CLASSIFIER, MODES, PET_MODES, training_sets
from pet_keras.train import fit_pet
from tiny import ex, make_mlm, sharpened_mlm, write_vocab

WORDS = {'positive': '很', 'negative': '不'}
# the synthetic task: a text's characters come mostly from A (positive) or B (negative)
SET_A, SET_B, NEUTRAL = '春夏花草风雨红黄', '秋冬石木山水黑白', '我你他她们这那有在人大小上中'


def synthetic(n, rng, tag, positive_share=0.5, purity=0.7):
    out = []
    for i in range(n):
        label = 'positive' if i < positive_share * n else 'negative'
        pool = SET_A if label == 'positive' else SET_B
        chars = [
            rng.choice(list(pool)) if rng.random() < purity else rng.choice(list(NEUTRAL))
            for _ in range(rng.integers(8, 15))
        ]
        out.append(ex(''.join(chars), label, '%s:%d' % (tag, i + 1)))
    order = rng.permutation(n)
    return [out[i] for i in order]


def seed_all(seed):
    tf.random.set_seed(seed)
    np.random.seed(seed)


@pytest.fixture(scope='module')
def sharp(tok, tmp_path_factory):
    seed_all(1)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path_factory.mktemp('sharp'), seed=5)
    return mlm


def all_finite(weights):
    return all(np.isfinite(w).all() for w in weights)


def h5_nonfinite(path):
    bad = []
    with h5py.File(path, 'r') as f:
        f.visititems(
            lambda name, d: bad.append(name) if isinstance(d, h5py.Dataset) and not np.isfinite(d[()]).all() else None
        )
    return bad


# ---------------------------------------------------------------- Scorer


def mixed_examples(n=21, seed=0):
    rng = np.random.default_rng(seed)
    pool = list(SET_A + SET_B + NEUTRAL)
    return [
        ex(''.join(rng.choice(pool, rng.integers(1, 30))), ['positive', 'negative', 'neutral'][i % 3], 'mix:%d' % i)
        for i in range(n)
    ]


def test_predict_proba_rows_sum_to_one_and_order_is_kept(tok, sharp):
    pvp = PVP('____满意。{text}', {'positive': ['很', '好'], 'negative': ['不'], 'neutral': ['理']}, tok, 40)
    examples = mixed_examples()
    bucketed = Scorer(sharp, pvp, batch_size=4).predict_proba(examples, verbose=False)
    assert bucketed.shape == (len(examples), 3)
    np.testing.assert_allclose(bucketed.sum(1), 1, atol=1e-5)
    # each row is that example's own distribution (scored alone); file order: tests/test_benchmarks.py
    alone = Scorer(sharp, pvp, batch_size=1).predict_proba(examples, verbose=False)
    np.testing.assert_allclose(bucketed, alone, atol=1e-5)
    # rows differ from one another (otherwise the order checks above would be vacuous)
    assert np.abs(alone - alone.mean(0)).max() > 0.05


def test_bucketed_batches_are_sorted_and_padded_to_multiple_of_8(tok, sharp):
    pvp = PVP('____满意。{text}', WORDS, tok, 40)
    examples = [ex(e.fields['text']) for e in mixed_examples()]
    encoded = [pvp.encode(e) for e in examples]
    seen = []
    previous = 0
    for idx, (ids, segs, slots) in Scorer(sharp, pvp, batch_size=4).batches(examples):
        lengths = [len(encoded[i].token_ids) for i in idx]
        assert min(lengths) >= previous
        previous = max(lengths)
        assert ids.shape[1] % 8 == 0 and ids.shape[1] >= max(lengths) and ids.shape[1] - max(lengths) < 8
        assert ids.shape == segs.shape and slots.shape == (len(idx), 1)
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(len(encoded)))


def test_accuracy(tok, sharp):
    pvp = PVP('____满意。{text}', {'positive': ['很', '好'], 'negative': ['不'], 'neutral': ['理']}, tok, 40)
    examples = mixed_examples()
    scorer = Scorer(sharp, pvp)
    probs = scorer.predict_proba(examples, verbose=False)
    want = np.mean(probs.argmax(1) == np.array([pvp.labels.index(e.label) for e in examples]))
    assert scorer.accuracy(examples, verbose=False) == pytest.approx(want)
    # every example relabelled with its predicted label: accuracy 1
    relabelled = [ex(e.fields['text'], pvp.labels[k]) for e, k in zip(examples, probs.argmax(1))]
    assert scorer.accuracy(relabelled, verbose=False) == 1.0
    with pytest.raises(ValueError, match='labeled'):
        scorer.accuracy(examples + [ex('春天')], verbose=False)


# ---------------------------------------------------------------- training_sets


def test_training_sets_modes():
    labeled, unlabeled = ['l1', 'l2'], ['u1', 'u2', 'u3']
    assert training_sets('zero-shot', labeled, unlabeled) == ([], [])
    assert training_sets('unsupervised', labeled, unlabeled) == ([], unlabeled)
    assert training_sets('few-shot', labeled, unlabeled) == (labeled, [])
    assert training_sets('semi-supervised', labeled, unlabeled) == (labeled, unlabeled)
    assert training_sets(CLASSIFIER, labeled, unlabeled) == (labeled, [])
    assert PET_MODES == ('zero-shot', 'unsupervised', 'few-shot', 'semi-supervised') and set(MODES) > set(PET_MODES)
    with pytest.raises(ValueError, match='semi-supervised'):
        training_sets('supervised', labeled, unlabeled)


# ---------------------------------------------------------------- fit_pet


def task(seed=0, n_train=128, n_eval=64, valid_positive_share=0.5):
    rng = np.random.default_rng(seed)
    return (
        synthetic(n_train, rng, 'train'),
        synthetic(n_eval, rng, 'valid', valid_positive_share),
        synthetic(n_eval, rng, 'test'),
    )


def reload(out):
    """The output folder loaded as a user would: config + checkpoint + vocab + pvp.json."""
    config_path = os.path.join(out, 'bert_config.json')
    tokenizer = load_tokenizer(os.path.join(out, 'vocab.txt'), load_config(config_path), config_path)
    mlm = build_mlm(config_path, os.path.join(out, 'bert_model.ckpt'))
    with open(os.path.join(out, 'pvp.json'), encoding='utf-8') as f:
        pvp = PVP.from_json(json.load(f), tokenizer)
    return mlm, pvp


def read_results(out):
    with open(os.path.join(out, 'results.json'), encoding='utf-8') as f:
        return json.load(f)


def synthetic_setup(tok, tmp_path):
    """The seeded synthetic task, its P1-style PVP and a fresh tiny model."""
    seed_all(0)
    train, valid, test = task(0)
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    mlm = make_mlm(
        len(tok._token_dict),
        tmp_path / 'init',
        dict_path=write_vocab(tmp_path / 'vocab.txt'),
        hidden=64,
        intermediate=128,
    )
    return train, valid, test, pvp, mlm


def test_fit_pet_learns_a_synthetic_task_end_to_end(tok, tmp_path):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    generator = PetDataGenerator(pvp, train, batch_size=16, mask_rate=0.15, seed=0)
    out = str(tmp_path / 'run')
    steps = len(generator)  # an evaluation per pass over the training set
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=25 * steps,
        eval_every=steps,
        learning_rate=3e-3,
        patience=8,
        out_dir=out,
        settings={'note': 'synthetic'},
        verbose=0,
    )

    # it learned: far above chance (0.5), and above its zero-shot accuracy
    assert results['test'] >= 0.8
    assert results['valid'] >= 0.8
    assert results['zero_shot']['test'] < results['test']

    # results.json: what fit_pet returned
    saved = read_results(out)
    for key in (
        'zero_shot',
        'evaluations',
        'best_step',
        'valid',
        'test',
        'settings',
        'pattern',
        'budget',
        'wall_seconds',
    ):
        assert key in saved
    assert saved['settings'] == {'note': 'synthetic'}
    assert saved['pattern'] == pvp.to_json()
    assert saved['budget'] == {'steps': 25 * steps, 'eval_every': steps, 'patience': 8, 'learning_rate': 3e-3}
    assert saved['valid'] == results['valid'] and saved['test'] == results['test']
    assert set(saved['zero_shot']) == {'valid', 'test'}
    history = saved['evaluations']
    assert [r['step'] for r in history] == [steps * i for i in range(1, len(history) + 1)]
    for r in history:
        assert {'step', 'seconds_train', 'loss', 'masked_accuracy', 'valid'} <= set(r)
        assert 'test' not in r  # test accuracy is computed once, with the best weights
        assert np.isfinite(r['loss'])
    best = saved['best_step'] // steps
    assert 1 <= best <= len(history) and saved['best_step'] == best * steps
    valids = [saved['zero_shot']['valid']] + [r['valid'] for r in history]
    assert saved['valid'] == max(valids)
    assert best == valids.index(max(valids))  # the first evaluation reaching the best
    # loss went down while it learned
    assert history[best - 1]['loss'] < history[0]['loss']

    # files: the best weights (h5) and the best model as a checkpoint folder
    assert os.path.isfile(os.path.join(out, BEST_WEIGHTS))
    for name in (
        'bert_config.json',
        'bert_model.ckpt.index',
        'bert_model.ckpt.data-00000-of-00001',
        'vocab.txt',
        'pvp.json',
        'results.json',
    ):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not [n for n in os.listdir(out) if n.startswith('.tmp')]

    # the model in memory holds the best weights
    assert Scorer(mlm, pvp).accuracy(test, verbose=False) == results['test']
    assert Scorer(mlm, pvp).accuracy(valid, verbose=False) == results['valid']

    # the folder reloads like a downloaded checkpoint, with the same accuracy
    seed_all(123)  # a different random init: everything must come from the files
    again, again_pvp = reload(out)
    assert again_pvp.to_json() == pvp.to_json()
    assert Scorer(again, again_pvp).accuracy(test, verbose=False) == results['test']
    np.testing.assert_allclose(
        Scorer(again, again_pvp).predict_proba(test, verbose=False),
        Scorer(mlm, pvp).predict_proba(test, verbose=False),
        atol=1e-5,
    )

    # best_weights.h5 holds the same model: loaded into a fresh random one, same accuracy
    fresh = build_mlm(os.path.join(out, 'bert_config.json'))
    assert Scorer(fresh, again_pvp).accuracy(test, verbose=False) < 0.8
    fresh.training_model().load_weights(os.path.join(out, BEST_WEIGHTS))
    assert Scorer(fresh, again_pvp).accuracy(test, verbose=False) == results['test']


def test_nan_after_some_evaluations_keeps_the_pre_nan_best(tok, tmp_path):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    steps = len(generator)
    # a sane rate for 6 intervals, then an absurd one: the loss becomes NaN in interval 7
    lr = keras.optimizers.schedules.PiecewiseConstantDecay([6 * steps], [3e-3, 1e30])
    out = str(tmp_path / 'run')
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=25 * steps,
        eval_every=steps,
        learning_rate=lr,
        patience=25,
        out_dir=out,
        verbose=0,
    )
    history = results['evaluations']
    assert len(history) == 7  # stopped in the interval where the loss became NaN
    assert history[-1]['loss'] is None  # diverged, recorded as null in strict JSON
    assert all(np.isfinite(r['loss']) for r in history[:-1])
    assert 1 <= results['best_step'] // steps <= 6
    assert results['valid'] > 0.6  # the sane intervals learned something worth keeping
    assert not h5_nonfinite(os.path.join(out, BEST_WEIGHTS))
    assert all_finite(mlm.full_model.get_weights())
    assert Scorer(mlm, pvp).accuracy(test, verbose=False) == results['test']
    again, again_pvp = reload(out)
    assert all_finite(again.full_model.get_weights())
    assert Scorer(again, again_pvp).accuracy(test, verbose=False) == results['test']
    assert read_results(out)['best_step'] == results['best_step']


def test_nan_interval_is_never_the_best(tok, tmp_path):
    """A model whose weights are NaN predicts NaN probabilities, and argmax of
    NaNs is label 0: on a validation set where label 0 is the majority such a
    model "scores" better than a real one. The NaN interval must still not become
    the best, nor be saved."""
    seed_all(0)
    train, valid, test = task(0, n_train=64, n_eval=32, valid_positive_share=0.75)
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    assert pvp.labels[0] == 'positive'
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    # the untrained model answers 'negative' everywhere: zero-shot valid accuracy 0.25
    bias = mlm.layers['MLM-Bias']
    values = bias.get_weights()
    values[0][tok.token_to_id('不')] = 5.0
    bias.set_weights(values)
    initial = [w.copy() for w in mlm.full_model.get_weights()]
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    out = str(tmp_path / 'run')
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=3 * len(generator),
        eval_every=len(generator),
        learning_rate=1e30,
        patience=3,
        out_dir=out,
        verbose=0,
    )
    assert results['zero_shot']['valid'] == 0.25
    assert len(results['evaluations']) == 1 and results['evaluations'][0]['loss'] is None  # diverged: stopped
    assert results['best_step'] == 0
    assert results['valid'] == results['zero_shot']['valid']
    assert results['test'] == results['zero_shot']['test']
    assert not h5_nonfinite(os.path.join(out, BEST_WEIGHTS))
    for got, want in zip(mlm.full_model.get_weights(), initial):
        np.testing.assert_array_equal(got, want)
    again, again_pvp = reload(out)
    assert all_finite(again.full_model.get_weights())
    assert Scorer(again, again_pvp).accuracy(test, verbose=False) == results['zero_shot']['test']


def test_zero_steps_only_evaluates_and_saves_the_model(tok, tmp_path):
    seed_all(2)
    _, valid, test = task(1, n_train=2, n_eval=16)
    pvp = PVP('{text}____满意。', WORDS, tok, 32)
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'), seed=2)
    before = Scorer(mlm, pvp).predict_proba(test, verbose=False)
    out = str(tmp_path / 'zero')
    results = fit_pet(mlm, pvp, None, valid, test, steps=0, out_dir=out, verbose=0)
    assert results['evaluations'] == [] and results['best_step'] == 0
    assert results['valid'] == results['zero_shot']['valid'] == Scorer(mlm, pvp).accuracy(valid, verbose=False)
    assert results['test'] == results['zero_shot']['test']
    assert not os.path.exists(os.path.join(out, BEST_WEIGHTS))
    assert read_results(out)['zero_shot'] == results['zero_shot']
    again, again_pvp = reload(out)
    np.testing.assert_allclose(Scorer(again, again_pvp).predict_proba(test, verbose=False), before, atol=1e-5)
    # without a test set
    results = fit_pet(mlm, pvp, None, valid, None, out_dir=str(tmp_path / 'no-test'), verbose=0)
    assert results['test'] is None and 'test' not in results['zero_shot']


def test_the_budget_runs_unless_patience_stops_it(tok, tmp_path):
    """Validation accuracy that never improves (learning rate 0): with
    ``patience=None`` the whole budget runs; ``patience=1`` stops after the
    first evaluation without improvement. The scripts' defaults are the library's."""
    seed_all(3)
    train, valid, _ = task(3, n_train=16, n_eval=16)
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    every = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        steps=5,
        eval_every=2,
        patience=None,
        learning_rate=0.0,
        out_dir=str(tmp_path / 'all'),
        verbose=0,
    )
    assert [r['step'] for r in every['evaluations']] == [2, 4, 6]  # the last interval ends past the budget
    assert len({r['valid'] for r in every['evaluations']}) == 1  # the weights did not move
    stopped = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        steps=6,
        eval_every=2,
        learning_rate=0.0,
        patience=1,
        out_dir=str(tmp_path / 'patience'),
        verbose=0,
    )
    assert [r['step'] for r in stopped['evaluations']] == [2]  # not better than step 0: patience 1 stops
    args = cli.script_parser('test', {'P1': '____满意。{text}'}, 'P1', 'data').parse_args([])
    assert (args.steps, args.eval_every, args.patience) == (budget.STEPS, budget.EVAL_EVERY, budget.PATIENCE)
    assert args.lr is None  # fit_pet's default: budget.default_learning_rate
    defaults = inspect.signature(fit_pet).parameters
    assert (
        defaults['steps'].default,
        defaults['eval_every'].default,
        defaults['patience'].default,
        defaults['learning_rate'].default,
    ) == (args.steps, args.eval_every, args.patience, None)


def test_default_learning_rate_is_the_tuned_one_for_the_embedded_model_only(tmp_path):
    embedded = str(budget.EMBEDDED_CHECKPOINT / 'bert_model.ckpt')
    rates = {name: budget.default_learning_rate(name, embedded) for name in MODES if name != 'zero-shot'}
    assert rates == {'unsupervised': 3e-4, 'few-shot': 3e-4, 'semi-supervised': 1e-4, 'classifier': 5e-5}
    for mode in rates:
        assert budget.default_learning_rate(mode, str(tmp_path / 'bert_model.ckpt')) == budget.REFERENCE_LEARNING_RATE
    assert budget.default_learning_rate('few-shot', None) == budget.REFERENCE_LEARNING_RATE


@pytest.mark.parametrize(
    'kwargs, message',
    [
        ({'steps': -1}, 'steps must be'),
        ({'eval_every': 0}, 'eval_every must be'),
        ({'patience': 0}, 'patience must be'),
        ({'steps': 2.5}, 'steps must be'),
    ],
)
def test_a_bad_budget_is_refused_before_anything_runs(tok, tmp_path, kwargs, message):
    pvp = PVP('____满意。{text}', WORDS, tok, 32)
    with pytest.raises(ValueError, match=message):
        fit_pet(None, pvp, None, [], out_dir=str(tmp_path / 'out'), **kwargs)
    assert not (tmp_path / 'out').exists()
