#!/usr/bin/env python
"""How a few-shot run chooses its number of steps, and how good its own estimate is.

For each task (few-shot, one pattern: sentiment P1 with its 168 labeled reviews, TNEWS N1 with
its 1,185, IFLYTEK with its 3,024 and many_labels.py's pattern and two-character words) and seed,
the test accuracy of the weights four rules choose:

  cv        k-fold cross-validation over the labeled examples (pet_keras.crossval, as
            `pet-keras train` without --valid): the step with the best mean held-out accuracy
  fixed     a fixed budget of --fixed-steps steps (timoschick/pet trains 250 steps), no validation
  valid160  the best step on 160 validation rows drawn at random (a FewCLUE-sized dev set)
  oracle    the best step on the full validation set (the grid's protocol)

and the absolute error of the cross-validated estimate against the test accuracy of its choice;
also (``lexical``) each rule's choice with the lexical expert (on by default), fitted with the
validation the rule had: cv and fixed none (its n-grams and C cross-validated, the default
weight), valid160 the 160 rows, oracle the full validation set (n-grams, C and weight chosen there);
and the cross-validated estimate with the expert (``runner.cross_validated_expert``) against test.

One reference run per task and seed trains on every labeled example for --max-steps steps
(no early stopping), saving its weights after each interval; the valid160 and oracle curves are
evaluated on those weights, and test accuracy only at the steps chosen. Training on every
labeled example for N steps is what the cross-validated run trains last (same examples, seed,
batches and learning rate), so its final model is the reference run's step N: the script
checks this once per task by training that final model and comparing their test accuracies.
The folds train under the default budget (patience 5, at most --max-steps steps); ``fold_patience``
reads off their curves what a fold stopped after fewer evaluations without a better held-out
accuracy would have chosen (its curve is a prefix of the same run), the steps the folds would have
trained, and the test accuracy there: the evidence for ``budget.FOLD_PATIENCE``.
Results are saved after every unit to <out>/few_shot_selection.json, and a run resumes there.

    python benchmarks/few_shot_selection.py --sentiment-dir ../shared/datasets/sentiment \\
        --tnews-dir ../shared/datasets/tnews --iflytek-dir ../shared/datasets/iflytek --out results
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402  (imports pet_keras first)
import common  # noqa: E402
import many_labels  # noqa: E402

from pet_keras import budget, crossval, lexical, runner  # noqa: E402
from pet_keras.batching import PetDataGenerator  # noqa: E402
from pet_keras.compat import keras  # noqa: E402
from pet_keras.model import build_mlm  # noqa: E402
from pet_keras.pattern import PVP  # noqa: E402
from pet_keras.scoring import Scorer  # noqa: E402
from pet_keras.train import fit_pet, training_model  # noqa: E402
from pet_keras.verbalizer import Verbalizer  # noqa: E402

PATTERNS = {'sentiment': 'P1', 'tnews': 'N1', 'iflytek': 'I1'}
# the reference run's and the folds' steps: IFLYTEK's few-shot runs chose steps 650 to 1,400
MAX_STEPS = {'sentiment': 600, 'tnews': 600, 'iflytek': 1600}
RULES = ('cv', 'fixed', 'valid160', 'oracle')
# the folds' default patience and two cheaper ones, read off the same folds
FOLD_PATIENCES = (budget.FOLD_PATIENCE, 4, 3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint-dir', default=str(budget.EMBEDDED_CHECKPOINT))
    p.add_argument('--tasks', nargs='+', choices=sorted(PATTERNS), default=sorted(PATTERNS))
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--folds', type=int, default=crossval.FOLDS)
    p.add_argument(
        '--max-steps',
        type=int,
        help='the reference run and the folds (default: %s)' % ', '.join('%s %d' % kv for kv in MAX_STEPS.items()),
    )
    p.add_argument('--fixed-steps', type=int, default=250)
    p.add_argument('--small-valid', type=int, default=160)
    p.add_argument('--sentiment-dir', default='../shared/datasets/sentiment')
    p.add_argument('--tnews-dir', default='../shared/datasets/tnews')
    p.add_argument('--iflytek-dir', default='../shared/datasets/iflytek')
    p.add_argument('--out', default='results')
    p.add_argument('--work-dir', default='runs/few_shot_selection')
    args = p.parse_args(argv)
    if args.fixed_steps > min(max_steps(args, name) for name in args.tasks) or args.fixed_steps % budget.EVAL_EVERY:
        p.error('--fixed-steps must be a multiple of %d and at most --max-steps' % budget.EVAL_EVERY)
    return args


def max_steps(args, name):
    return args.max_steps or MAX_STEPS[name]


def load_task(name, args):
    """accuracy.py's task, or IFLYTEK (not one of accuracy.py's tasks) as many_labels.py reads it."""
    if name != 'iflytek':
        return accuracy.load_task(name, task_args(args))
    train, valid, test = many_labels.load_splits(args.iflytek_dir)
    words = many_labels.two_character_words(many_labels.label_names(train, valid, test))
    return argparse.Namespace(
        name=name,
        labeled=train,
        valid=valid,
        test=test,
        templates={PATTERNS[name]: many_labels.PATTERN},
        verbalizer=Verbalizer(words),
        maxlen=128,
    )


def task_args(args):
    """What accuracy.load_task reads."""
    return argparse.Namespace(
        sentiment_dir=args.sentiment_dir,
        tnews_dir=args.tnews_dir,
        max_unlabeled=None,
        max_eval=None,
        patterns=list(PATTERNS.values()),
        modes=['few-shot'],
        maxlen=None,
    )


class SaveEveryInterval(keras.callbacks.Callback):
    def __init__(self, folder, eval_every):
        super().__init__()
        self.folder, self.eval_every = folder, eval_every

    def on_train_begin(self, logs=None):
        if not os.path.exists(os.path.join(self.folder, 'step-0.h5')):
            self.model.save_weights(os.path.join(self.folder, 'step-0.h5'))

    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights(os.path.join(self.folder, 'step-%d.h5' % ((epoch + 1) * self.eval_every)))


def fresh_mlm(ckpt, seed):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    return build_mlm(ckpt.config_path, ckpt.checkpoint_path, dict_path=ckpt.dict_path)


def fit(ckpt, pvp, train, valid, seed, steps, out_dir, patience=None, callbacks=()):
    """fit_pet's few-shot run in ``out_dir`` (resumed where stopped); a finished one is read back."""
    mlm = fresh_mlm(ckpt, seed)
    finished = os.path.join(out_dir, 'results.json')
    if os.path.exists(finished):
        with open(finished, encoding='utf-8') as f:
            return mlm, json.load(f)
    generator = PetDataGenerator(pvp, train, [], 32, 0.15, seed=seed)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        None,
        mode='few-shot',
        steps=steps,
        eval_every=budget.EVAL_EVERY,
        patience=patience,
        out_dir=out_dir,
        resume=True,
        verbose=0,
        callbacks=callbacks,
    )
    return mlm, results


def weights_accuracy(mlm, pvp, folder, step, examples):
    """Accuracy on ``examples`` of the reference run's weights at ``step`` (0: the checkpoint's)."""
    training_model(mlm, 0.0, pvp).load_weights(os.path.join(folder, 'step-%d.h5' % step))
    return Scorer(mlm, pvp).accuracy(examples, verbose=False)


def small_validation(task, seed, size):
    """A FewCLUE-sized validation set: ``size`` rows drawn at random (``seed``) from the full one.
    Not its first rows: TNEWS' dev file is sorted by label, and its first 160 rows hold 3 of 15."""
    return random.Random(seed).sample(list(task.valid), size)


def reference_run(pvp, task, seed, ckpt, args, work):
    """The reference run (every labeled example, --max-steps steps, no early stopping, its weights
    saved after each interval), trained, resumed or read back: (mlm, its folder, its curve)."""
    reference = os.path.join(work, 'reference')
    os.makedirs(reference, exist_ok=True)
    saver = SaveEveryInterval(reference, budget.EVAL_EVERY)
    steps = max_steps(args, task.name)
    mlm, results = fit(ckpt, pvp, task.labeled, task.valid, seed, steps, reference, callbacks=[saver])
    return mlm, reference, crossval.accuracy_curve(results)


def with_random_valid160(task, seed, ckpt, args, work, record):
    """A unit measured when valid160 was the first 160 validation rows, with valid160 chosen on
    ``small_validation`` instead (on its reference run, trained again if its weights are gone);
    the old choice is kept as ``valid160_first_rows``; its lexical rules are measured again."""
    pvp = PVP(task.templates[PATTERNS[task.name]], task.verbalizer, ckpt.tokenizer, task.maxlen)
    mlm, reference, curve = reference_run(pvp, task, seed, ckpt, args, work)
    small = small_validation(task, seed, args.small_valid)
    small_curve = {step: weights_accuracy(mlm, pvp, reference, step, small) for step in sorted(curve)}
    step = first_best(small_curve)
    record = dict(record, valid160_rows='random')
    record['valid160_first_rows'] = {'step': record['steps']['valid160'], 'test': record['test']['valid160']}
    record['steps'] = dict(record['steps'], valid160=step)
    record['test'] = dict(record['test'], valid160=weights_accuracy(mlm, pvp, reference, step, task.test))
    record['curves'] = dict(record['curves'], valid160=small_curve)
    record.pop('lexical', None)
    return record


def with_lexical(task, seed, ckpt, args, work, record):
    """Each rule's weights with the lexical expert as a run with that rule's validation fits it
    (cv, fixed: none; valid160: its rows; oracle: the full set): the mixture's test accuracy, PET's
    alone at the same weights, the lexical model's alone. A reference run whose weights are gone
    (a unit measured before this rule) is trained again. When its validation curve differs from
    the unit's (``curve_difference``), it is another model: its own curves choose the valid160 and
    oracle steps (``steps``)."""
    pvp = PVP(task.templates[PATTERNS[task.name]], task.verbalizer, ckpt.tokenizer, task.maxlen)
    mlm, reference, curve = reference_run(pvp, task, seed, ckpt, args, work)
    recorded = {int(step): value for step, value in record['curves']['oracle'].items()}
    steps = dict(record['steps'])
    difference = max(abs(curve[step] - recorded[step]) for step in recorded)
    small = small_validation(task, seed, args.small_valid)
    if difference:
        small_curve = {step: weights_accuracy(mlm, pvp, reference, step, small) for step in sorted(curve)}
        steps.update(valid160=first_best(small_curve), oracle=first_best(curve))
    validation = {'cv': None, 'fixed': None, 'valid160': small, 'oracle': task.valid}
    out = {'curve_difference': difference, 'steps': steps, 'rules': {}}
    measured = {}  # cv and fixed often choose the same step, and neither has validation
    for rule, step in steps.items():
        key = (step, rule if validation[rule] else None)
        if key in measured:
            out['rules'][rule] = measured[key]
            continue
        mlm = fresh_mlm(ckpt, seed)
        training_model(mlm, 0.0, pvp).load_weights(os.path.join(reference, 'step-%d.h5' % step))
        scorer = Scorer(mlm, pvp)
        _, expert = lexical.fit_expert(scorer, task.labeled, validation[rule], task.test, args.folds, seed)
        out['rules'][rule] = {
            'test': expert['test'],
            'pet_test': scorer.accuracy(task.test, verbose=False),
            'lexical_test': expert['lexical']['test'],
            'weight': expert['weight'],
        }
        measured[key] = out['rules'][rule]
    return out


def lexical_estimate(task, seed, args, work, record):
    """The cross-validated estimate with the lexical expert (``runner.cross_validated_expert``) over
    the unit's fold runs and its error against the cv rule's test accuracy with the expert; None
    when the fold runs are gone."""
    fold_dirs = [os.path.join(work, 'fold-%d' % n) for n in range(1, args.folds + 1)]
    if not all(os.path.exists(os.path.join(d, 'results.json')) for d in fold_dirs):
        return None
    estimate = runner.cross_validated_expert(fold_dirs, task.labeled, seed)
    return dict(estimate, error=abs(estimate['accuracy'] - record['lexical']['rules']['cv']['test']))


def stopped_early(curve, patience):
    """The prefix of a fold's held-out ``curve`` a run with ``patience`` evaluates (fit_pet's rule:
    step 0 is the first best, a run stops ``patience`` evaluations after its best)."""
    kept, best, since = {}, None, 0
    for step in sorted(curve):
        kept[step] = curve[step]
        if best is None or curve[step] > best:
            best, since = curve[step], 0
        else:
            since += 1
            if since == patience:
                break
    return kept


def fold_patience(task, seed, ckpt, args, work):
    """For each patience in FOLD_PATIENCES, the cross-validated choice from the folds' curves cut
    where a fold with that patience stops (``stopped_early``), its estimate, the fold steps trained
    and the test accuracy of the reference run's weights at that step; None when the folds are gone."""
    paths = [os.path.join(work, 'fold-%d' % n, 'results.json') for n in range(1, args.folds + 1)]
    if not all(os.path.exists(path) for path in paths):
        return None
    curves = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            curves.append(crossval.accuracy_curve(json.load(f)))
    pvp = PVP(task.templates[PATTERNS[task.name]], task.verbalizer, ckpt.tokenizer, task.maxlen)
    mlm, reference, _ = reference_run(pvp, task, seed, ckpt, args, work)
    out, test = {}, {}  # test accuracy by step: the patiences often choose the same one
    for patience in FOLD_PATIENCES:
        cut = [stopped_early(curve, patience) for curve in curves]
        choice = crossval.choose_steps(cut)
        step = choice['steps']
        if step not in test:
            test[step] = weights_accuracy(mlm, pvp, reference, step, task.test)
        out[str(patience)] = {
            'steps': step,
            'estimate': choice['accuracy'],
            'fold_steps': [max(curve) for curve in cut],
            'test': test[step],
        }
    return out


def lacks_fold_patience(record):
    """Whether a unit's record lacks a patience of FOLD_PATIENCES (None: its folds were gone)."""
    if 'fold_patience' not in record:
        return True
    done = record['fold_patience']
    return done is not None and not {str(p) for p in FOLD_PATIENCES} <= set(done)


def first_best(curve):
    best = max(curve.values())
    return min(step for step, value in curve.items() if value == best)


def unit(task, seed, ckpt, args, work):
    """One task and seed: the four rules' steps, their test accuracies, the CV estimate."""
    pvp = PVP(task.templates[PATTERNS[task.name]], task.verbalizer, ckpt.tokenizer, task.maxlen)
    small = small_validation(task, seed, args.small_valid)
    started = time.time()
    mlm, reference, oracle_curve = reference_run(pvp, task, seed, ckpt, args, work)
    small_curve = {step: weights_accuracy(mlm, pvp, reference, step, small) for step in sorted(oracle_curve)}
    reference_seconds = time.time() - started

    started = time.time()

    def fit_fold(number, train, held_out, cap):
        # uncapped (not pet-keras train's cap): fold_patience reads each fold's whole curve
        fold_dir = os.path.join(work, 'fold-%d' % number)
        steps = max_steps(args, task.name)
        return fit(ckpt, pvp, train, held_out, seed, steps, fold_dir, patience=budget.PATIENCE)[1]

    choice = crossval.cross_validate(fit_fold, task.labeled, args.folds, seed)
    cv_seconds = time.time() - started
    steps = {
        'cv': choice['steps'],
        'fixed': args.fixed_steps,
        'valid160': first_best(small_curve),
        'oracle': first_best(oracle_curve),
    }
    mlm = fresh_mlm(ckpt, seed)
    test = {rule: weights_accuracy(mlm, pvp, reference, step, task.test) for rule, step in steps.items()}
    return {
        'steps': steps,
        'test': test,
        'cv_estimate': choice['accuracy'],
        'cv_stderr': choice['stderr'],
        'cv_fold_accuracy': choice['fold_accuracy'],
        'estimate_error': abs(choice['accuracy'] - test['cv']),
        'valid160_rows': 'random',
        'curves': {'oracle': oracle_curve, 'valid160': small_curve, 'cv_mean': choice['mean_curve']},
        'seconds': {'reference': round(reference_seconds, 1), 'cross_validation': round(cv_seconds, 1)},
    }


def check_final_model(task, record, seed, ckpt, args, work):
    """Train the cross-validated run's final model as pet-keras train does and compare its test
    accuracy with the reference run's at the same step."""
    pvp = PVP(task.templates[PATTERNS[task.name]], task.verbalizer, ckpt.tokenizer, task.maxlen)
    steps = record['steps']['cv']
    if steps == 0:
        return record['test']['cv']
    mlm, results = fit(ckpt, pvp, task.labeled, None, seed, steps, os.path.join(work, 'final'))
    training_model(mlm, 0.0, pvp).load_weights(os.path.join(work, 'final', 'best_weights.h5'))
    return Scorer(mlm, pvp).accuracy(task.test, verbose=False)


def summary(done):
    """Per task, over every seed measured (not only this call's --tasks and --seeds): the mean test
    accuracy of each rule, the gap to the oracle, the estimate's error and the folds' time."""
    rows = {}
    for name in sorted({key.split('/')[0] for key in done}):
        units = [unit for key, unit in sorted(done.items()) if key.split('/')[0] == name]
        rows[name] = {
            'seeds': len(units),
            **{'test_%s' % rule: float(np.mean([u['test'][rule] for u in units])) for rule in RULES},
            'cv_minus_oracle': float(np.mean([u['test']['cv'] - u['test']['oracle'] for u in units])),
            'estimate_error': float(np.mean([u['estimate_error'] for u in units])),
            'max_estimate_error': float(max(u['estimate_error'] for u in units)),
            'cv_seconds': float(np.mean([u['seconds']['cross_validation'] for u in units])),
        }
        with_expert = [u['lexical'] for u in units if u.get('lexical')]
        if with_expert:
            rows[name]['lexical'] = {
                'seeds': len(with_expert),
                **{'test_%s' % rule: float(np.mean([r['rules'][rule]['test'] for r in with_expert])) for rule in RULES},
                'cv_minus_oracle': float(
                    np.mean([r['rules']['cv']['test'] - r['rules']['oracle']['test'] for r in with_expert])
                ),
            }
            errors = [r['cv_estimate']['error'] for r in with_expert if r.get('cv_estimate')]
            if errors:
                rows[name]['lexical'].update(estimate_error=float(np.mean(errors)), estimates=len(errors))
        cut = [u['fold_patience'] for u in units if u.get('fold_patience')]
        if cut:
            rows[name]['fold_patience'] = {
                patience: {
                    'seeds': len(cut),
                    'test': float(np.mean([c[patience]['test'] for c in cut])),
                    'fold_steps': float(np.mean([sum(c[patience]['fold_steps']) for c in cut])),
                    # as pet-keras train trains them: each fold capped at the steps every earlier one reached
                    'fold_steps_capped': float(
                        np.mean([sum(crossval.capped_steps(c[patience]['fold_steps'])) for c in cut])
                    ),
                }
                for patience in cut[0]
            }
    return rows


def main(argv=None):
    args = parse_args(argv)
    path = os.path.join(args.out, 'few_shot_selection.json')
    done = json.load(open(path, encoding='utf-8')) if os.path.exists(path) else {}
    units, checks = done.setdefault('units', {}), done.setdefault('final_model_checks', {})
    done['command'] = common.command_line('benchmarks/few_shot_selection.py', argv or sys.argv[1:])
    done['machine'] = common.machine_info()
    ckpt = accuracy.Checkpoint(args.checkpoint_dir)
    tasks = {name: load_task(name, args) for name in args.tasks}
    for seed in range(args.seeds):  # seed by seed, so a run cut short has every task
        for name, task in tasks.items():
            key = '%s/seed%d' % (name, seed)
            work = os.path.join(args.work_dir, name, 'seed%d' % seed)
            if key not in units:
                units[key] = unit(task, seed, ckpt, args, work)
                done['summary'] = summary(units)
                common.write_json(path, done)
            if units[key].get('valid160_rows') != 'random':
                units[key] = with_random_valid160(task, seed, ckpt, args, work, units[key])
                done['summary'] = summary(units)
                common.write_json(path, done)
            if 'lexical' not in units[key]:
                units[key].pop('cv_lexical', None)  # the cv rule of 'lexical', measured before the others
                units[key]['lexical'] = with_lexical(task, seed, ckpt, args, work, units[key])
                done['summary'] = summary(units)
                common.write_json(path, done)
            if units[key]['lexical'].get('cv_estimate') is None:
                units[key]['lexical']['cv_estimate'] = lexical_estimate(task, seed, args, work, units[key])
                done['summary'] = summary(units)
                common.write_json(path, done)
            if lacks_fold_patience(units[key]):
                units[key]['fold_patience'] = fold_patience(task, seed, ckpt, args, work)
                done['summary'] = summary(units)
                common.write_json(path, done)
            if seed == 0 and name not in checks:
                final = check_final_model(task, units[key], seed, ckpt, args, work)
                checks[name] = {'reference_at_cv_step': units[key]['test']['cv'], 'final_model': final}
                common.write_json(path, done)
            print(key, json.dumps(units[key]['test']), 'estimate %.4f' % units[key]['cv_estimate'], flush=True)
    done['summary'] = summary(units)
    common.write_json(path, done)
    print(json.dumps(done['summary'], indent=2))


if __name__ == '__main__':
    main()
