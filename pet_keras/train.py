"""Training a PET model with Keras: fit, evaluate every so many steps, keep the best.

The budget (``pet_keras.budget``) is in optimizer steps: Keras' "epoch" here
is one evaluation interval of ``eval_every`` steps over an endless tf.data
stream. Before training the model is evaluated as it is (zero-shot, step 0).
The best weights are written atomically and reloaded at the end, and test
accuracy is computed once, on them. The output folder is a checkpoint
pet_keras loads like a downloaded one, plus the pattern (pvp.json) and the
metrics (results.json). An interrupted run resumes from its last evaluation
(``pet_keras.runstate``).
"""

import os
import shutil
import time

import numpy as np
import tensorflow as tf

from pet_keras import budget, runlock
from pet_keras.compat import keras
from pet_keras.io import write_json
from pet_keras.loop import budget_record, chosen_step, print_outcome, train_and_keep_best
from pet_keras.runstate import BACKUP, BEST_WEIGHTS, RUN_STATE, evaluation_data, saved_run, training_data
from pet_keras.scoring import Scorer
from bert4keras.optimizers import Adam


def fit_pet(
    mlm,
    pvp,
    generator,
    valid,
    test=None,
    mode=None,
    steps=budget.STEPS,
    eval_every=budget.EVAL_EVERY,
    patience=budget.PATIENCE,
    learning_rate=None,
    slot_loss=budget.SLOT_LOSS,
    prompt_only=False,
    out_dir=None,
    settings=None,
    tensorboard=False,
    verbose=1,
    calibrate=False,
    resume=False,
    callbacks=(),
    may_change=(),
    record=None,
):
    """Train ``mlm`` on ``generator`` (a PetDataGenerator; None: zero-shot)
    for at most ``steps`` optimizer steps, evaluating validation accuracy
    every ``eval_every`` steps and keeping the weights of the best; with
    ``patience`` it stops after so many evaluations without a better one
    (``None``: the whole budget runs). ``steps=0`` only evaluates (zero-shot).
    Test accuracy is computed once, with the best weights. With ``valid=None``
    there is nothing to choose on: the whole budget trains (no early stopping)
    and the last weights are kept, as a budget chosen beforehand (by
    ``pet_keras.crossval``) wants. ``learning_rate``
    (Adam; a float or a Keras schedule) defaults to ``budget.default_learning_rate``
    for ``mode`` (``pet_keras.modes``: the mode the generator's data was chosen for)
    and the checkpoint; a run that trains needs one or the other. ``slot_loss`` is how the
    slot trains (``budget.SLOT_LOSSES``, ``layers.PetLoss``). ``prompt_only`` trains only the
    embeddings of the pattern's ``[P]`` tokens (``PVP.prompt_ids``). ``calibrate`` evaluates with contextual
    calibration (``Scorer``). ``callbacks``: more Keras callbacks for ``fit``.
    ``record``: more entries for results.json (e.g. ``pet_keras.crossval``'s choice).

    ``resume`` continues the interrupted run in ``out_dir`` after its last
    evaluation, with its optimizer state, history and best weights; its
    ``settings`` may differ only in the keys ``may_change`` names (the scripts
    pass ``config.RESUME_MAY_CHANGE``), its training data not at all.
    It replays the batch stream up to there, so with the same seeds it trains
    on the batches the uninterrupted run would have. Without ``resume`` an
    interrupted run in ``out_dir`` is an error.

    The model trains under the tf.distribute strategy it was built in; with
    several workers only the chief writes ``out_dir``, holding its lock
    (``runlock``) while it runs: another run into the same folder is refused.
    Returns the results dict (also written to ``out_dir/results.json``)."""
    budget.check(steps, eval_every, patience, learning_rate)
    budget.check_slot_loss(slot_loss, pvp.slot_lengths)
    check_prompt_only(prompt_only, pvp)
    if valid is not None and not valid:
        raise ValueError('no validation examples: the best weights are chosen on validation accuracy (or pass None)')
    out_dir = out_dir or 'runs/pet'
    chief = mlm.full_model.distribute_strategy.extended.should_checkpoint  # multi-worker: the chief writes
    with runlock.locked(out_dir, hold=chief):
        started = time.time()
        settings = settings or {}
        steps = steps if generator is not None else 0
        if learning_rate is None and steps:
            if mode is None:
                raise ValueError('fit_pet trains: pass its mode (pet_keras.modes) or a learning_rate')
            learning_rate = budget.default_learning_rate(mode, getattr(mlm, 'checkpoint_path', None))
        scorer = Scorer(mlm, pvp, calibrate=calibrate)
        results = {
            'settings': settings,
            'pattern': pvp.to_json(),
            'calibrate': calibrate,
            'budget': budget_record(steps, eval_every, patience, learning_rate),
            'slot_loss': slot_loss,
            'prompt_only': prompt_only,
            **(record or {}),
        }
        run = None
        if steps:
            run = {
                'settings': settings,
                'training_data': training_data(generator),
                'evaluation_data': evaluation_data(valid, test),
            }
        saved = saved_run(out_dir, run, resume, may_change)
        if saved and len(saved['evaluations']) * eval_every > steps:
            raise ValueError(
                '--steps %d: the run in %s has already trained %d steps; resuming needs a budget at least that '
                'large (or use another --out)' % (steps, out_dir, len(saved['evaluations']) * eval_every)
            )
        zero = results['zero_shot'] = zero_shot(scorer, valid, test, saved, out_dir, eval_every)
        history = []
        if steps:
            plan = budget.Budget(steps, eval_every, patience, learning_rate)
            history = train_intervals(
                mlm,
                pvp,
                (slot_loss, prompt_only),
                scorer,
                generator,
                valid,
                plan,
                out_dir,
                run,
                saved,
                zero,
                tensorboard,
                verbose,
                callbacks,
            )
        results.update(best_results(scorer, test, zero, history), wall_seconds=round(time.time() - started, 1))
        if chief:
            save_run(mlm, pvp, out_dir, results, run)
        print_outcome(results, out_dir)
        return results


def zero_shot(scorer, valid, test, saved, out_dir, eval_every):
    """Step 0's accuracies: the untrained model's, or those a resumed run (``saved``) recorded."""
    if saved:
        zero = saved['zero_shot']
        print('resuming the run in %s after step %d' % (out_dir, len(saved['evaluations']) * eval_every))
    else:
        print('zero-shot evaluation (step 0)')
        zero = {'valid': scorer.accuracy(valid) if valid else None}
        if test:
            zero['test'] = scorer.accuracy(test)
    print(
        ' - '.join(
            ['step 0']
            + ['%s %.4f' % (split, zero[split]) for split in ('valid', 'test') if zero.get(split) is not None]
        )
    )
    return zero


def best_results(scorer, test, zero, history):
    """The evaluations, the best step and its validation and test accuracy (test computed
    once, here, on the best weights the model now holds; step 0's when nothing beat it).
    Without validation the best step is the last one trained."""
    best_step, best_valid = chosen_step(zero['valid'], history)
    best_test = zero.get('test')
    if test and best_step:
        print('test accuracy of the best weights (step %d)' % best_step)
        best_test = scorer.accuracy(test)
    return {'evaluations': history, 'best_step': best_step, 'valid': best_valid, 'test': best_test}


def save_run(mlm, pvp, out_dir, results, run):
    """The run folder: the checkpoint, pvp.json, results.json, and run.json marked finished."""
    mlm.save_checkpoint(out_dir, mlm.config, getattr(mlm, 'dict_path', None))
    pvp.save(os.path.join(out_dir, 'pvp.json'))
    write_json(os.path.join(out_dir, 'results.json'), results)
    if run:
        run['finished'] = True
        write_json(os.path.join(out_dir, RUN_STATE), run)
    remove_backup(out_dir)


def train_intervals(
    mlm, pvp, objective, scorer, generator, valid, plan, out_dir, run, saved, zero, tensorboard, verbose, callbacks
):
    """fit_pet's training of ``pvp`` by ``objective`` (slot loss, prompt only) under ``plan``
    (a budget.Budget) in the one loop (``loop.train_and_keep_best``), recording the run in
    ``out_dir``/run.json after each interval and backing up the optimizer's state for --resume;
    the evaluation records."""
    chief = mlm.full_model.distribute_strategy.extended.should_checkpoint
    best_path = os.path.join(out_dir, BEST_WEIGHTS)
    model = training_model(mlm, plan.learning_rate, pvp, *objective)
    if saved and saved.get('trained'):  # killed while writing the run folder: training had ended
        print('training had ended; writing the run folder again')
        model.load_weights(best_path)
        run.update(zero_shot=zero, evaluations=saved['evaluations'], finished=False, trained=True)
        return saved['evaluations']
    done = saved['evaluations'] if saved else []
    run.update(zero_shot=zero, evaluations=done, finished=False)
    state_path = os.path.join(out_dir, RUN_STATE)

    def record_run(history):
        run['evaluations'] = history
        if chief:
            write_json(state_path, run)

    record_run(done)
    more = [keras.callbacks.TensorBoard(os.path.join(out_dir, 'tensorboard'))] if tensorboard else []
    # after the callbacks that record an interval: a crash in between trains that interval again. Kept
    # after fit until the run folder is complete (save_run): a run killed while writing it resumes there
    more.append(keras.callbacks.BackupAndRestore(os.path.join(out_dir, BACKUP), delete_checkpoint=False))
    history = train_and_keep_best(
        model,
        generator.to_dataset(random=True).skip(len(done) * plan.eval_every),
        scorer,
        valid,
        plan,
        out_dir,
        best_path,
        zero['valid'],
        'the same command with --resume continues',
        done=done,
        chief=chief,
        on_interval=record_run,
        callbacks=more + list(callbacks),
        verbose=verbose,
    )
    run['trained'] = True
    record_run(history)
    return history


def training_model(mlm, learning_rate, pvp, slot_loss=budget.SLOT_LOSS, prompt_only=False):
    """The MLM's training model on ``pvp``'s batches (``MaskedLM.training_model``),
    compiled with Adam under its strategy; with ``prompt_only`` Adam changes only the
    embeddings of ``pvp``'s prompt tokens."""
    with mlm.full_model.distribute_strategy.scope():
        model = mlm.training_model(pvp, slot_loss)
        only = [only_rows(mlm.layers['Embedding-Token'].embeddings, pvp.prompt_ids)] if prompt_only else []
        model.compile(optimizer=Adam(learning_rate, gradient_transformers=only))
    # the logged loss and accuracy are already averaged over all replicas; Keras' default ("auto")
    # sums them again over multi-worker workers
    model.distribute_reduction_method = 'first'
    return model


def check_prompt_only(prompt_only, pvp):
    """A ValueError when ``prompt_only`` would train nothing: a pattern without ``[P]``."""
    if prompt_only and not pvp.prompt_ids:
        raise ValueError(
            "--prompt-only trains only the embeddings of the pattern's learned tokens [P], and pattern %r has "
            'none (add some, e.g. [P][P]____{text})' % pvp.pattern.template
        )


def only_rows(table, rows):
    """A gradient transformer (Keras' legacy optimizers) that keeps ``rows`` of ``table``'s
    gradient and zeroes every other gradient: Adam then leaves all else unchanged."""
    keep = np.zeros((table.shape[0], 1), dtype='float32')
    keep[rows] = 1

    def transform(grads_and_vars):
        return [
            (tf.convert_to_tensor(g) * keep if v.name == table.name else tf.zeros_like(v), v)
            if g is not None
            else (g, v)
            for g, v in grads_and_vars
        ]

    return transform


def remove_backup(out_dir):
    """Remove ``out_dir/backup``, BackupAndRestore's, once the run folder is complete."""
    shutil.rmtree(os.path.join(out_dir, BACKUP), ignore_errors=True)
