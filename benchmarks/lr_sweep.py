#!/usr/bin/env python
"""The learning-rate sweep behind pet_keras.budget's defaults: each mode (and
the classifier) trained at each rate under the default budget, chosen on
validation accuracy only (test accuracy is recorded, never used to choose).

    python benchmarks/lr_sweep.py                      # sentiment P1, seed 0, 1e-4 3e-4 5e-4 1e-3
    python benchmarks/lr_sweep.py --modes few-shot classifier --lrs 3e-4 1e-3
    python benchmarks/lr_sweep.py --modes semi-supervised --lrs 3e-4 --labeled-share 0.5

Cells run as benchmarks/accuracy.py runs them (same data, budget and code)
and are saved after each one to <out>/lr_sweep.json, so a run resumes where
it stopped; <out>/lr_sweep.md gets the table and the winners, and
<out>/curves-<mode>.png the validation curves (with matplotlib). Other flags
are accuracy.py's (--steps, --eval-every, --patience, --batch-size, --quick …).
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402  (imports pet_keras first)
import common  # noqa: E402

from pet_keras.io import sha256, write_text  # noqa: E402
from pet_keras.modes import CLASSIFIER, TRAINED  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--modes', nargs='+', choices=TRAINED, default=['few-shot', CLASSIFIER, 'semi-supervised', 'unsupervised']
    )
    p.add_argument('--lrs', nargs='+', type=float, default=[1e-4, 3e-4, 5e-4, 1e-3])
    p.add_argument('--pattern', default='P1', choices=list(accuracy.TASKS['sentiment']['patterns']))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-unlabeled', type=int, help='use only the first N unlabeled texts')
    p.add_argument('--out', default=str(common.REPO / 'results'))
    p.add_argument('--table-only', action='store_true')
    args, rest = p.parse_known_args(argv)
    # the other flags are accuracy.py's (--steps, --eval-every, --patience, --batch-size, --max-eval, --quick …),
    # with its defaults, so a cell here is a cell there
    base = accuracy.parse_args(['--tasks', 'sentiment', '--patterns', args.pattern] + rest)
    for name, value in vars(base).items():
        setattr(args, name, getattr(args, name, None) if getattr(args, name, None) is not None else value)
    return args


def key(mode, lr, share=None):
    """A cell's name; a semi-supervised cell with a labeled share says it."""
    return '%s/lr%g' % (mode, lr) + ('/share%g' % share if share and mode == 'semi-supervised' else '')


def share_suffix(cell):
    """', labeled share X' for a cell trained with a labeled share, else ''."""
    share = cell.get('labeled_share')
    return ', labeled share %g' % share if share else ''


def line_name(cell):
    """A cell's line in its mode's curves: its rate, and its labeled share if set."""
    return 'lr %g' % cell['lr'] + share_suffix(cell)


def row_name(cell):
    """A cell's row in the table: its mode, and its labeled share if set."""
    return cell['mode'] + share_suffix(cell)


def markdown(results):
    cells = results['cells']
    lines = [
        '# Learning-rate sweep',
        '',
        'Made by %s. Sentiment, pattern %s, seed %d, checkpoint `%s`; budget: at most %d steps, validation '
        'every %d, stop after %d evaluations without a better one. Each cell: best validation accuracy (%%) '
        '@ the step it was reached / test accuracy of those weights (%%). The default is the rate with the best '
        'validation accuracy (bold); test accuracy plays no part.'
        % (
            '; '.join('`%s`' % c for c in results['commands']),
            results['settings']['pattern'],
            results['settings']['seed'],
            results['settings']['checkpoint_dir'],
            results['settings']['steps'],
            results['settings']['eval_every'],
            results['settings']['patience'],
        ),
        '',
    ]
    lrs = sorted({c['lr'] for c in cells.values()})
    by_row = {}  # row name -> {lr: cell}
    for c in sorted(cells.values(), key=lambda c: (TRAINED.index(c['mode']), c.get('labeled_share') or 0)):
        by_row.setdefault(row_name(c), {})[c['lr']] = c
    # the best of each mode (over its labeled shares too) is bold
    best = {m: max(c['valid'] for c in cells.values() if c['mode'] == m) for m in {c['mode'] for c in cells.values()}}
    rows = []
    for name, done in by_row.items():
        row = [name]
        for lr in lrs:
            c = done.get(lr)
            text = '%.2f @ %d / %.2f' % (100 * c['valid'], c['best_step'], 100 * c['test']) if c else 'not run'
            row.append('**%s**' % text if c and c['valid'] == best[c['mode']] else text)
        rows.append(row)
    lines.append(common.markdown_table(['mode'] + ['lr %g' % lr for lr in lrs], rows))
    return '\n'.join(lines) + '\n'


def curves(results, out):
    """One PNG per mode: validation accuracy against steps, a line per rate."""
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('curves skipped: matplotlib is not installed (pip install -r benchmarks/requirements.txt)')
        return []
    written = []
    for mode in TRAINED:
        cells = sorted(
            (c for c in results['cells'].values() if c['mode'] == mode),
            key=lambda c: (c.get('labeled_share') or 0, c['lr']),
        )
        if not cells:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for c in cells:
            step_0 = c.get('zero_shot') or c.get('step_0')  # PET's zero-shot; the classifier's untrained model
            start = step_0['valid'] if step_0 else None
            points = [(0, start)] * (start is not None) + [
                (r['step'], r['valid']) for r in c['evaluations'] if r.get('valid') is not None
            ]
            ax.plot([s for s, _ in points], [100 * v for _, v in points], marker='.', label=line_name(c))
            ax.axvline(c['best_step'], color=ax.lines[-1].get_color(), linestyle=':', linewidth=1)
        ax.set_xlabel('optimizer step')
        ax.set_ylabel('validation accuracy (%)')
        ax.set_title('sentiment %s, %s (dotted: best step)' % (results['settings']['pattern'], mode))
        ax.legend(fontsize='small')
        fig.tight_layout()
        path = os.path.join(out, 'curves-%s.png' % mode)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    ckpt = accuracy.Checkpoint(args.checkpoint_dir)
    settings = {
        'checkpoint_dir': common.portable_path(args.checkpoint_dir),
        'checkpoint_index_sha256': sha256(ckpt.checkpoint_path + '.index'),
        'sentiment_dir': common.portable_path(args.sentiment_dir),
        'pattern': args.pattern,
        'seed': args.seed,
        'steps': args.steps,
        'eval_every': args.eval_every,
        'patience': args.patience,
        'batch_size': args.batch_size,
        'mask_rate': args.mask_rate,
        'max_unlabeled': args.max_unlabeled,
    }
    results = accuracy.load_results(out / 'lr_sweep.json', settings)
    command = common.command_line('benchmarks/lr_sweep.py', sys.argv[1:] if argv is None else argv)
    if not args.table_only and command not in results['commands']:
        results['commands'].append(command)
    task = accuracy.load_task('sentiment', args)
    todo = [] if args.table_only else [(mode, lr) for mode in args.modes for lr in args.lrs]
    for number, (mode, lr) in enumerate(todo, 1):
        name = key(mode, lr, args.labeled_share)
        if name in results['cells']:
            print('[%d/%d] %s: done, skipped' % (number, len(todo), name), flush=True)
            continue
        print('\n[%d/%d] %s' % (number, len(todo), name), flush=True)
        args.lr = lr
        record = accuracy.run_cell(
            task,
            mode,
            None if mode == CLASSIFIER else args.pattern,
            args.seed,
            ckpt,
            args,
            accuracy.cell_folder(args, 'lr-sweep/' + name),
        )
        results['cells'][name] = dict(record, lr=lr)
        common.write_json(out / 'lr_sweep.json', results)
        write_text(str(out / 'lr_sweep.md'), markdown(results))
    common.write_json(out / 'lr_sweep.json', results)
    write_text(str(out / 'lr_sweep.md'), markdown(results))
    written = curves(results, str(out))
    print('\n' + markdown(results))
    print('written %s' % ', '.join([str(out / 'lr_sweep.json'), str(out / 'lr_sweep.md')] + written))


if __name__ == '__main__':
    main()
