"""Faults during training: an interrupted run resumed (fit_pet(resume=True),
--resume), and writes that fail half-way (the best weights, Google-format
checkpoints), on the synthetic task of test_predict_train."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import errno
import json
import os

import h5py
import numpy as np
import pytest
import tensorflow as tf

from pet_keras.config import RESUME_MAY_CHANGE
from pet_keras.callbacks import ResumableEarlyStopping
from pet_keras.compat import keras, write_checkpoint
from pet_keras.batching import PetDataGenerator
from pet_keras.model import build_mlm
from pet_keras.runstate import BACKUP, BEST_WEIGHTS, RUN_STATE
from pet_keras.scoring import Scorer
from pet_keras.train import fit_pet
from test_predict_train import read_results, synthetic_setup

SETTINGS = {'mode': 'few-shot', 'split_seed': 1, 'seed': 0, 'pattern': 'P1', 'steps': 40, 'resume': False}
PASS = 8  # steps per pass over the 128 training examples, batches of 16: an evaluation each


class Interrupted(Exception):
    pass


class Probe(keras.callbacks.Callback):
    """Records the interval (Keras epoch) and optimizer step at which each
    evaluation interval begins, the weights after the last one, the step count
    at the end; raises ``Interrupted`` after batch ``interrupt_at = (interval,
    batch)`` (0-based), or at the start of training with ``interrupt_at='start'``."""

    def __init__(self, interrupt_at=None):
        super().__init__()
        self.interrupt_at = interrupt_at
        self.begun = []
        self.weights = self.steps = None

    def on_train_begin(self, logs=None):
        if self.interrupt_at == 'start':
            raise Interrupted

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.begun.append((epoch, int(self.model.optimizer.iterations.numpy())))

    def on_train_batch_end(self, batch, logs=None):
        if self.interrupt_at == (self.epoch, batch):
            raise Interrupted

    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        self.steps = int(self.model.optimizer.iterations.numpy())


def run(tok, folder, out, interrupt_at=None, resume=False, settings=SETTINGS, examples=None):
    """fit_pet on the synthetic task, as a fresh process would run it: the
    same seeds, a new model and generator. Returns (results, probe, mlm, pvp, test)."""
    folder.mkdir()
    train, valid, test, pvp, mlm = synthetic_setup(tok, folder)
    generator = PetDataGenerator(pvp, train[:examples], batch_size=16, mask_rate=0.15, seed=0)
    probe = Probe(interrupt_at)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=settings['steps'],
        eval_every=PASS,
        learning_rate=3e-3,
        patience=10,
        out_dir=str(out),
        settings=dict(settings, resume=resume),
        may_change=RESUME_MAY_CHANGE,
        verbose=0,
        resume=resume,
        callbacks=[probe],
    )
    return results, probe, mlm, pvp, test


def h5_values(path):
    values = {}
    with h5py.File(path, 'r') as f:
        f.visititems(lambda name, d: values.update({name: d[()]}) if isinstance(d, h5py.Dataset) else None)
    return values


def without_times(records):
    return [{k: v for k, v in r.items() if k != 'seconds_train'} for r in records]


# ---------------------------------------------------------------- resume


def test_resumed_run_continues_after_its_last_evaluation_as_if_never_interrupted(tok, tmp_path):
    steps = PASS
    whole, whole_probe, whole_mlm, pvp, test = run(tok, tmp_path / 'a', tmp_path / 'whole')
    assert whole_probe.begun == [(epoch, epoch * steps) for epoch in range(5)]

    # interrupted in the middle of interval 4: intervals 1-3 are backed up, interval 4's 4 steps are lost
    out = tmp_path / 'resumed'
    with pytest.raises(Interrupted):
        run(tok, tmp_path / 'b', out, interrupt_at=(3, 3))
    assert os.path.isdir(out / BACKUP)
    state = json.loads((out / RUN_STATE).read_text(encoding='utf-8'))
    assert not state['finished'] and [r['step'] for r in state['evaluations']] == [8, 16, 24]
    # an evaluation beat zero-shot: best_weights.h5 differs from the initial weights a resumed run starts from
    assert max(r['valid'] for r in state['evaluations']) > state['zero_shot']['valid']
    best_so_far = h5_values(out / BEST_WEIGHTS)

    # without --resume the interrupted run is not overwritten
    with pytest.raises(ValueError, match='interrupted after evaluation 3.*--resume'):
        run(tok, tmp_path / 'c', out)
    # a resumed run interrupted before its first step leaves the best weights so far alone
    with pytest.raises(Interrupted):
        run(tok, tmp_path / 'd', out, interrupt_at='start', resume=True)
    again = h5_values(out / BEST_WEIGHTS)
    assert again.keys() == best_so_far.keys()
    for name, value in best_so_far.items():
        np.testing.assert_array_equal(again[name], value)

    resumed, probe, mlm, _, _ = run(tok, tmp_path / 'e', out, resume=True)
    # it starts at interval 4 with the optimizer's state after interval 3, and trains intervals 4 and 5 only
    assert probe.begun == [(3, 3 * steps), (4, 4 * steps)]
    assert probe.steps == whole_probe.steps == 5 * steps
    # the same batches and optimizer state: the same weights, history and results
    for got, want in zip(probe.weights, whole_probe.weights):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert len(resumed['evaluations']) == 5
    for got, want in zip(without_times(resumed['evaluations']), without_times(whole['evaluations'])):
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-4), key
    for key in ('zero_shot', 'best_step', 'valid', 'test'):
        assert resumed[key] == whole[key], key
    saved = read_results(out)
    assert saved['evaluations'] == resumed['evaluations'] and saved['best_step'] == whole['best_step']
    assert json.loads((out / RUN_STATE).read_text(encoding='utf-8'))['finished']
    assert not os.path.exists(out / BACKUP)  # BackupAndRestore's backup is gone once the run ends
    # the best model in memory and on disk is the uninterrupted run's
    np.testing.assert_allclose(
        Scorer(mlm, pvp).predict_proba(test, verbose=False),
        Scorer(whole_mlm, pvp).predict_proba(test, verbose=False),
        atol=1e-5,
    )
    # a finished run has nothing to resume
    with pytest.raises(ValueError, match='finished'):
        run(tok, tmp_path / 'f', out, resume=True)


def test_resume_refuses_other_settings_or_training_data(tok, tmp_path):
    out = tmp_path / 'run'
    with pytest.raises(Interrupted):
        run(tok, tmp_path / 'a', out, interrupt_at=(1, 0))
    state = (out / RUN_STATE).read_bytes()
    # --steps may change (and --resume does); split_seed and pattern may not: named with both values
    changed = dict(SETTINGS, split_seed=2, pattern='P2', steps=48)
    with pytest.raises(ValueError) as error:
        run(tok, tmp_path / 'b', out, resume=True, settings=changed)
    assert str(error.value).endswith('%s: pattern: "P1", now "P2"; split_seed: 1, now 2' % RUN_STATE)
    # other training examples (the data file or split changed) with the same flags
    with pytest.raises(ValueError, match='training data: .*"examples": 128.*now .*"examples": 96'):
        run(tok, tmp_path / 'c', out, resume=True, examples=96)
    assert (out / RUN_STATE).read_bytes() == state and os.path.isdir(out / BACKUP)


def stopped_at(callback, values, first_epoch=0):
    """The epoch at which ``callback`` stops a run with validation accuracies ``values`` (None: never)."""
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch in range(first_epoch, len(values)):
        callback.on_epoch_end(epoch, {'val_accuracy': values[epoch]})
        if model.stop_training:
            return epoch
    return None


def test_resumed_early_stopping_counts_patience_from_the_runs_best():
    zero, values = 0.55, [0.5, 0.7, 0.6, 0.65, 0.68, 0.6, 0.9]
    whole = stopped_at(ResumableEarlyStopping([zero], monitor='val_accuracy', mode='max', patience=3), values)
    assert whole == 4  # 0.7 at epoch 1, then three epochs without better
    for done in range(1, whole + 1):
        resumed = ResumableEarlyStopping([zero] + values[:done], monitor='val_accuracy', mode='max', patience=3)
        assert stopped_at(resumed, values, done) == whole, done


@pytest.mark.parametrize('patience', [1, 3])
def test_patience_counts_from_step_0_when_no_evaluation_beats_it(patience):
    values = [0.6, 0.7, 0.75, 0.8]  # each better than the last, none better than step 0's 0.8
    callback = ResumableEarlyStopping([0.8], monitor='val_accuracy', mode='max', patience=patience)
    assert stopped_at(callback, values) == patience - 1


# ---------------------------------------------------------------- writes that fail half-way


def disk_full(path):
    return OSError(errno.ENOSPC, 'No space left on device', path)


def test_a_failed_best_weights_write_keeps_the_previous_best_and_the_run_resumes(tok, tmp_path, monkeypatch):
    (tmp_path / 'a').mkdir()
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path / 'a')
    initial = [w.copy() for w in mlm.full_model.get_weights()]
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    out = tmp_path / 'run'
    written = []
    save_weights = keras.Model.save_weights

    def fail_after_the_first(self, filepath, *args, **kwargs):
        written.append(filepath)
        if len(written) == 1:
            return save_weights(self, filepath, *args, **kwargs)  # step 0, the initial weights
        with open(filepath, 'wb') as f:
            f.write(b'\x89HDF\r\n\x1a\n' + bytes(64))  # the disk fills up half-way
        raise disk_full(filepath)

    monkeypatch.setattr(keras.Model, 'save_weights', fail_after_the_first)
    with pytest.raises(OSError, match='No space left'):
        fit_pet(
            mlm,
            pvp,
            generator,
            valid,
            test,
            steps=10 * PASS,
            eval_every=PASS,
            learning_rate=3e-3,
            patience=10,
            out_dir=str(out),
            verbose=0,
        )
    assert len(written) == 2  # the failure came when an evaluation beat step 0
    assert not [n for n in os.listdir(out) if n.startswith('.tmp')]
    fresh = build_mlm(os.path.join(tmp_path / 'a', 'init', 'bert_config.json'))
    fresh.training_model().load_weights(str(out / BEST_WEIGHTS))
    for got, want in zip(fresh.full_model.get_weights(), initial):
        np.testing.assert_array_equal(got, want)

    # space freed: the run resumes after its last backed-up evaluation and finishes
    monkeypatch.setattr(keras.Model, 'save_weights', save_weights)
    done = len(json.loads((out / RUN_STATE).read_text(encoding='utf-8'))['evaluations'])
    (tmp_path / 'b').mkdir()
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path / 'b')
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        steps=(done + 1) * PASS,
        eval_every=PASS,
        learning_rate=3e-3,
        patience=10,
        out_dir=str(out),
        verbose=0,
        resume=True,
    )
    assert [r['step'] for r in results['evaluations']] == [PASS * i for i in range(1, done + 2)]
    assert results['best_step'] >= PASS and Scorer(mlm, pvp).accuracy(test, verbose=False) == results['test']


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    prefix = str(tmp_path / 'bert_model.ckpt')
    previous = {
        'bert/embeddings/word_embeddings': np.arange(12, dtype='float32').reshape(4, 3),
        'cls/predictions/output_bias': np.ones(4, dtype='float32'),
    }
    write_checkpoint(prefix, previous)
    save = tf.raw_ops.SaveV2

    def save_half(prefix, tensor_names, shape_and_slices, tensors, name=None):
        save(prefix=prefix, tensor_names=tensor_names, shape_and_slices=shape_and_slices, tensors=tensors)
        with open(prefix + '.data-00000-of-00001', 'r+b') as f:
            f.truncate(10)  # the disk fills up half-way
        raise disk_full(prefix)

    monkeypatch.setattr(tf.raw_ops, 'SaveV2', save_half)
    with pytest.raises(OSError, match='No space left'):
        write_checkpoint(prefix, {name: value + 1 for name, value in previous.items()})
    assert sorted(name for name, _ in tf.train.list_variables(prefix)) == sorted(previous)
    for name, value in previous.items():
        np.testing.assert_array_equal(tf.train.load_variable(prefix, name), value)
