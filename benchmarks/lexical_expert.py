#!/usr/bin/env python
"""PET with the lexical expert (the default; ``--no-lexical`` leaves it out), measured on finished
PET run folders trained with ``--no-lexical``.

For each run folder (few-shot or semi-supervised, written by scripts/sentiment.py, news.py or
``pet-keras train`` on the development data), the lexical expert is fitted on the rows the run
labeled, weighed against the run's PET on validation and scored on test, beside PET alone and
the lexical model alone: what ``--lexical`` adds to that run (it fits after PET has trained and
changes nothing PET trains on). Nothing is written into the run folders. Results go to
<out>/lexical_expert.json after every run; a run already there is skipped.

    python scripts/sentiment.py --data-dir ../shared/datasets/sentiment --no-lexical --seed 0 --out runs/sentiment-s0
    python benchmarks/lexical_expert.py --task sentiment --runs runs/sentiment-s0 runs/sentiment-s1 ...
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)
from lexical import load_tasks  # noqa: E402

from pet_keras.io import read_json  # noqa: E402
from pet_keras.lexical import fit_expert  # noqa: E402
from pet_keras.presets import NEWS_PATTERNS, SENTIMENT_PATTERNS  # noqa: E402
from pet_keras.serving import load  # noqa: E402


def measure(run_dir, labeled, valid, test):
    """The record of one run folder: PET alone, the lexical model alone, the mixture."""
    results = read_json(os.path.join(run_dir, 'results.json'))
    settings = results['settings']
    if settings.get('mode') not in ('few-shot', 'semi-supervised'):
        raise SystemExit('%s: a %s run; the lexical expert joins few-shot and semi-supervised runs' % (
            run_dir, settings.get('mode')))  # fmt: skip
    if 'lexical_expert' in results:  # its scorer would be PET and the expert already
        raise SystemExit('%s: trained with the lexical expert; measure runs trained with --no-lexical' % run_dir)
    scorer = load(run_dir).scorer
    pet_valid, pet_test = scorer.accuracy(valid, verbose=False), scorer.accuracy(test, verbose=False)
    if abs(pet_valid - results['valid']) > 1e-3:  # another validation set than the run's: wrong --task
        raise SystemExit('%s: PET scores %.4f on this validation set, the run recorded %.4f' % (
            run_dir, pet_valid, results['valid']))  # fmt: skip
    _, expert = fit_expert(scorer, labeled, valid, test, seed=settings.get('seed', 0))
    lexical = expert.pop('lexical')
    lexical.pop('grid')
    return {
        'run': common.portable_path(run_dir),
        'seed': settings.get('seed'),
        'mode': settings['mode'],
        'pattern': results.get('pattern'),
        'pet': {'valid': pet_valid, 'test': pet_test, 'best_step': results['best_step']},
        'lexical': lexical,
        'mixture': expert,
    }


def summary(cells):
    """Mean and sample std over the runs of each task and pattern (``task/P1``; a pattern that is no
    preset by its template): PET, lexical, mixture (valid, test)."""
    names = {template: name for name, template in {**SENTIMENT_PATTERNS, **NEWS_PATTERNS}.items()}
    by_task = {}
    for key, cell in cells.items():
        template = cell['pattern']['pattern']
        group = '%s/%s' % (key.split('/')[0], names.get(template, template))
        by_task.setdefault(group, []).append(cell)
    out = {}
    for task, runs in by_task.items():
        entry = {'runs': len(runs), 'weights': [r['mixture']['weight'] for r in runs]}
        for name in ('pet', 'lexical', 'mixture'):
            for split in ('valid', 'test'):
                values = [r[name][split] for r in runs]
                entry['%s_%s' % (name, split)] = [
                    float(np.mean(values)),
                    float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                ]
        out[task] = entry
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--task', choices=('sentiment', 'tnews'), required=True)
    p.add_argument('--runs', nargs='+', required=True, help='finished PET run folders of that task')
    p.add_argument('--data-dir', default=str(common.SHARED / 'datasets'), help='holds sentiment/, tnews/')
    p.add_argument('--out', default=str(common.REPO / 'results'))
    args = p.parse_args(argv)
    labeled, valid, test = load_tasks([args.task], Path(args.data_dir))[args.task]
    path = Path(args.out) / 'lexical_expert.json'
    record = read_json(str(path)) if path.exists() else {'cells': {}}
    for run_dir in args.runs:
        key = '%s/%s' % (args.task, os.path.basename(os.path.normpath(run_dir)))
        if key in record['cells']:
            print('%s: measured already' % key)
            continue
        cell = record['cells'][key] = measure(run_dir, labeled, valid, test)
        print('%s: PET %.4f / %.4f, lexical %.4f / %.4f, with the expert (weight %g) %.4f / %.4f' % (
            key, cell['pet']['valid'], cell['pet']['test'], cell['lexical']['valid'], cell['lexical']['test'],
            cell['mixture']['weight'], cell['mixture']['valid'], cell['mixture']['test']), flush=True)  # fmt: skip
        record.update(
            command=common.command_line('benchmarks/lexical_expert.py', sys.argv[1:] if argv is None else argv),
            machine=common.machine_info(),
            summary=summary(record['cells']),
        )
        common.write_json(str(path), record)


if __name__ == '__main__':
    main()
