"""Progress in steps, readable in a log: no Keras "Epoch k/n" for a budget in steps, no carriage-return frames."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import numpy as np
import tensorflow as tf

from pet_keras.callbacks import fit_interruptibly
from pet_keras.compat import keras
from pet_keras.progress import progress_bar


def test_training_progress_in_a_log_is_one_line_per_interval_in_steps(capsys):
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer='sgd', loss='mse')
    data = tf.data.Dataset.from_tensors((np.ones((4, 2)), np.ones((4, 1)))).repeat()
    fit_interruptibly(model, 'go on', 'out', data, steps_per_epoch=3, epochs=2)
    out = capsys.readouterr().out
    assert out.splitlines() == ['steps 0–3 (≤ 6)', 'steps 3–6 (≤ 6)'] and '\r' not in out and 'Epoch' not in out


def test_a_loop_in_a_log_prints_one_line_at_its_end(capsys):
    bar = progress_bar(5, 'example')
    for done in (2, 4, 5):
        bar.update(done)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith('5 examples in ') and lines[0].endswith(' ms/example)')
