"""Training under tf.distribute: one epoch of the synthetic task of
test_predict_train gives the loss trajectory and weights of the same epoch on
one device, under MirroredStrategy on two logical CPU devices and under
MultiWorkerMirroredStrategy with two local workers (TF_CONFIG).

Devices and workers must be set up before TensorFlow initialises, so the runs
happen in fresh Python processes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))

# argv: tests folder, output folder, "local" (one device, then mirrored on two) or "worker" (TF_CONFIG)
RUN = r'''
import json, os, sys
sys.path.insert(0, sys.argv[1])
import pet_keras  # noqa: F401  (before tensorflow / bert4keras)
import tensorflow as tf

if sys.argv[3] == 'worker':
    strategies = {'worker%d' % json.loads(os.environ['TF_CONFIG'])['task']['index']:
                  tf.distribute.MultiWorkerMirroredStrategy()}
else:
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategies = {'one': tf.distribute.get_strategy(), 'mirrored': tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])}

import numpy as np
from pathlib import Path
from pet_keras.compat import keras
from pet_keras.batching import PetDataGenerator
from pet_keras.train import fit_pet
from test_predict_train import synthetic_setup
from tiny import make_tokenizer


class Steps(keras.callbacks.Callback):
    """Each step's loss (Keras logs the running mean of the epoch), the
    replicas in sync, the kind of variables, the weights after the epoch."""

    def on_train_begin(self, logs=None):
        self.means, self.replicas = [], self.model.distribute_strategy.num_replicas_in_sync
        self.variable = type(self.model.weights[0]).__name__

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs['loss']))

    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]


for name, strategy in strategies.items():
    folder = Path(sys.argv[2]) / name
    folder.mkdir()
    with strategy.scope():  # as the scripts build the model
        train, valid, test, pvp, mlm = synthetic_setup(make_tokenizer(), folder)
    # random extra masking: the replicas' halves of a batch hold different numbers of targets
    generator = PetDataGenerator(pvp, train, batch_size=16, mask_rate=0.15, seed=0)
    steps = Steps()
    results = fit_pet(mlm, pvp, generator, valid, test, steps=len(generator), eval_every=len(generator),
                      learning_rate=3e-3, out_dir=str(folder / 'run'), verbose=0, callbacks=[steps])
    k = np.arange(1, len(steps.means) + 1)
    losses = k * np.array(steps.means) - (k - 1) * np.array([0.0] + steps.means[:-1])
    np.savez(folder / 'weights.npz', *steps.weights)
    record = {
        'replicas': steps.replicas,
        'variable': steps.variable,
        'losses': losses.tolist(),
        'evaluations': results['evaluations'],
        'chief': strategy.extended.should_checkpoint,
    }
    (folder / 'epoch.json').write_text(json.dumps(record))
'''


def start(out, mode, env=None):
    return subprocess.Popen(
        [sys.executable, '-c', RUN, TESTS, str(out), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process):
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]


def read(folder):
    run = json.loads((folder / 'epoch.json').read_text())
    with np.load(folder / 'weights.npz') as weights:
        run['weights'] = [weights[name] for name in sorted(weights.files, key=lambda n: int(n.split('_')[1]))]
    return run


def assert_same_epoch(got, want):
    assert len(got['losses']) == len(want['losses']) == 8  # 128 examples, global batches of 16
    np.testing.assert_allclose(got['losses'], want['losses'], rtol=1e-4)
    assert len(got['weights']) == len(want['weights']) > 0
    for a, b in zip(got['weights'], want['weights']):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # evaluated alike (the Scorer reads the distributed weights) and logged alike (not summed over workers)
    assert got['evaluations'][0]['valid'] == want['evaluations'][0]['valid']
    for key in ('loss', 'masked_accuracy'):
        assert got['evaluations'][0][key] == pytest.approx(want['evaluations'][0][key], rel=1e-4), key


@pytest.fixture(scope='module')
def local(tmp_path_factory):
    """One epoch on one device and under MirroredStrategy on two logical CPUs."""
    out = tmp_path_factory.mktemp('local')
    finish(start(out, 'local'))
    return read(out / 'one'), read(out / 'mirrored')


def test_mirrored_on_two_devices_matches_one_device(local):
    one, mirrored = local
    assert (one['replicas'], mirrored['replicas']) == (1, 2)
    assert mirrored['variable'] == 'MirroredVariable'  # built and compiled under the strategy
    assert one['losses'][-1] < one['losses'][0]  # it trains
    assert_same_epoch(mirrored, one)


def free_port():
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def test_two_workers_match_one_device_and_only_the_chief_writes(local, tmp_path):
    one, _ = local
    cluster = {'worker': ['localhost:%d' % free_port() for _ in range(2)]}
    workers = [
        start(
            tmp_path,
            'worker',
            dict(os.environ, TF_CONFIG=json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})),
        )
        for index in range(2)
    ]
    for worker in workers:
        finish(worker)
    chief, other = read(tmp_path / 'worker0'), read(tmp_path / 'worker1')
    assert (chief['chief'], other['chief']) == (True, False)
    for worker in (chief, other):
        assert worker['replicas'] == 2 and worker['variable'] == 'MirroredVariable'
        assert_same_epoch(worker, one)
    # each worker had its own --out here (no shared file system): only the chief's has the run
    written = ('results.json', 'run.json', 'pvp.json', 'best_weights.h5', 'bert_model.ckpt.index')
    assert all((tmp_path / 'worker0' / 'run' / name).exists() for name in written)
    assert not any((tmp_path / 'worker1' / 'run' / name).exists() for name in written)
