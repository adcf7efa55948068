"""The one training loop of PET (``train.fit_pet``) and the [CLS] classifier
(``classifier.fit_classifier``): Keras ``fit`` over evaluation intervals of a step budget,
validation accuracy after each (``callbacks.Evaluator``), early stopping, the best weights
written atomically and reloaded at the end (without validation: the last), Ctrl-C at a step's
end; and what both record of it. The model-specific parts (the compiled model, its data, its
scorer, more callbacks) are passed in.

Pretraining (``pet_keras.pretrain``) has its own loop: it has no validation accuracy to choose
weights on, and it keeps the optimizer's state in a tf.train.Checkpoint every so many steps.
"""

import os

from pet_keras import budget
from pet_keras.callbacks import (
    Evaluator,
    best_evaluation,
    best_weights_checkpoint,
    early_stopping,
    fit_interruptibly,
    last_weights_checkpoint,
)
from pet_keras.compat import keras
from pet_keras.io import atomic_path


def train_and_keep_best(
    model, dataset, scorer, valid, plan, out_dir, weights_path, zero_valid, going_on,
    done=(), chief=True, on_interval=None, callbacks=(), verbose=1,
):  # fmt: skip
    """Train the compiled ``model`` on ``dataset`` (endless, tf.data) under ``plan`` (a
    ``budget.Budget``), evaluating ``scorer`` on ``valid`` after every interval; the best
    weights (``valid=None``: the last) are kept in ``weights_path`` and reloaded at the end.

    Args:
        zero_valid: step 0's validation accuracy (the untrained model; None without ``valid``).
        going_on: how the run goes on after Ctrl-C or a full disk, for the message.
        done: the evaluations of a resumed run (its weights are in ``weights_path``).
        chief: whether this worker writes (multi-worker: only the chief).
        on_interval: called with the evaluation records after each interval, once its weights
            are kept (a run records itself for --resume).
        callbacks: more Keras callbacks, run last.

    Returns the evaluation records, ``done``'s first."""
    steps, eval_every, patience, _ = plan
    if chief and not done:
        with atomic_path(weights_path) as tmp:  # step 0 is the best until an evaluation beats it
            model.save_weights(tmp)
    best_so_far = best_evaluation(zero_valid, done)[1] if valid is not None else None
    evaluator = Evaluator(scorer, valid, eval_every, best=best_so_far, history=done)
    if valid is not None:
        keep = [best_weights_checkpoint(weights_path, best_so_far)]
        keep += early_stopping(patience, [zero_valid] + [r['valid'] for r in done])
    else:  # nothing to choose on: the weights of the last interval are the run's
        keep = [last_weights_checkpoint(weights_path)]
    recorders = []
    if on_interval is not None:
        recorders.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_interval(evaluator.history))
        )
    fit_interruptibly(
        model,
        going_on,
        out_dir,
        dataset,
        steps_per_epoch=eval_every,
        epochs=budget.evaluations(steps, eval_every),
        callbacks=[evaluator, keep[0], *recorders, keras.callbacks.TerminateOnNaN(), *keep[1:], *callbacks],
        verbose=verbose,
    )
    if chief:
        model.load_weights(weights_path)
    return evaluator.history


def chosen_step(zero_valid, history):
    """(step, validation accuracy) of the weights a run keeps: the best evaluation (step 0,
    the untrained model, when none beat it), or without validation the last step trained."""
    if zero_valid is None:
        return (history[-1]['step'] if history else 0), None
    return best_evaluation(zero_valid, history)


def budget_record(steps, eval_every, patience, learning_rate):
    """The budget as results.json records it (a learning-rate schedule is not a number: null)."""
    return {
        'steps': steps,
        'eval_every': eval_every,
        'patience': patience,
        'learning_rate': learning_rate if isinstance(learning_rate, (int, float)) else None,
    }


def print_outcome(results, out_dir):
    """The run's last line: the kept step, its validation and test accuracy, where results are."""
    print(
        '%s %d: valid %s, test %s; results in %s'
        % (
            'best step' if results['valid'] is not None else 'trained steps',
            results['best_step'],
            '-' if results['valid'] is None else '%.4f' % results['valid'],
            '-' if results['test'] is None else '%.4f' % results['test'],
            os.path.join(out_dir, 'results.json'),
        )
    )
