"""Few-shot without a validation set: the number of steps chosen by k-fold cross-validation.

Choosing the best step on a large labeled validation set needs labels a few-shot user does
not have, and overstates the result (Perez, Kiela and Cho 2021, "True Few-Shot Learning with
Language Models"). Here the labeled examples are dealt into ``k`` folds, stratified by label;
for each fold a model trains on the other folds under the run's budget (patience included) and
is evaluated on the held-out fold every ``eval_every`` steps. The chosen number of steps is the
one with the best mean held-out accuracy (step 0, the untrained model, included) among the
steps every fold reached, so a fold trains no further than the last step every earlier fold
reached: that saves fold steps and never changes the choice. That mean, with its standard
error over the folds, estimates the final model's accuracy. The final model trains once on
every labeled example for that many steps, with no validation (``fit_pet(valid=None)``). The
cost is at most k + 1 runs.
"""

import math
import random

import numpy as np

FOLDS = 4


def stratified_folds(examples, k=FOLDS, seed=0):
    """``k`` lists of ``examples``: each label's examples, shuffled with ``seed``, dealt in turn,
    so every fold holds about 1/k of each label."""
    if k < 2:
        raise ValueError('cross-validation needs at least 2 folds, got %d' % k)
    if len(examples) < k:
        raise ValueError('%d labeled examples cannot make %d folds (fewer --folds)' % (len(examples), k))
    by_label = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    rng = random.Random(seed)
    folds, dealt = [[] for _ in range(k)], 0
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        for example in group:
            folds[dealt % k].append(example)
            dealt += 1
    return folds


def fold_splits(examples, k=FOLDS, seed=0):
    """[(training examples, held-out examples)] of each fold, in the order of ``examples``."""
    folds = stratified_folds(examples, k, seed)
    held = [{id(e) for e in fold} for fold in folds]
    return [([e for e in examples if id(e) not in held[i]], folds[i]) for i in range(k)]


def accuracy_curve(results):
    """{step: held-out accuracy} of a fit_pet run, step 0 (the untrained model) included, or of a
    fit_classifier run (its step 0, a random head, is never a model to keep)."""
    curve = {0: results['zero_shot']['valid']} if 'zero_shot' in results else {}
    curve.update({r['step']: r['valid'] for r in results['evaluations'] if r.get('valid') is not None})
    return curve


def choose_steps(curves):
    """The choice over the folds' ``accuracy_curve``s: the step with the best mean accuracy (the
    smallest on a tie) among those every fold evaluated, that mean, its standard error over the
    folds, each fold's accuracy there, and the mean curve."""
    steps = sorted(set.intersection(*(set(curve) for curve in curves)))
    means = {step: float(np.mean([curve[step] for curve in curves])) for step in steps}
    best = max(steps, key=lambda step: (means[step], -step))
    at_best = [curve[best] for curve in curves]
    return {
        'folds': len(curves),
        'steps': best,
        'accuracy': means[best],
        'stderr': float(np.std(at_best, ddof=1) / math.sqrt(len(at_best))),
        'fold_accuracy': at_best,
        'mean_curve': [{'step': step, 'accuracy': means[step]} for step in steps],
    }


def capped_steps(stops):
    """The steps each fold trains when it stops at the last step every earlier fold reached,
    given the step each would stop at on its own (``stops``, in fold order)."""
    return [int(step) for step in np.minimum.accumulate(stops)]


def cross_validate(fit_fold, examples, k=FOLDS, seed=0):
    """``fit_fold(number, training examples, held-out examples, steps)`` (fit_pet's or
    fit_classifier's results) for each of the ``k`` folds (numbered from 1), then
    ``choose_steps`` over their curves. ``steps`` caps a fold's budget: None for the first fold
    (the run's own), then the last step every earlier fold reached (``capped_steps``)."""
    curves, stops = [], []
    for number, (train, held_out) in enumerate(fold_splits(examples, k, seed), 1):
        print('cross-validation fold %d of %d: train %d, held out %d' % (number, k, len(train), len(held_out)))
        curves.append(accuracy_curve(fit_fold(number, train, held_out, min(stops) if stops else None)))
        stops.append(max(curves[-1]))
    choice = choose_steps(curves)
    print(
        'cross-validated accuracy %.4f ± %.4f (standard error, %d folds) at step %d'
        % (choice['accuracy'], choice['stderr'], k, choice['steps'])
    )
    return choice
