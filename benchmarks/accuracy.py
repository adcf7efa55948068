#!/usr/bin/env python
"""The blog's accuracy table: PET in four modes × patterns, against a plain
fine-tuned classifier, for one checkpoint (default: the embedded model).

  sentiment  ../shared/datasets/sentiment; the first 1% of train labeled, the
             rest unlabeled (as scripts/sentiment.py --data-dir); patterns
             P1–P5; modes zero-shot, unsupervised, few-shot, semi-supervised
  tnews      ../shared/datasets/tnews (FewCLUE): few-shot on train_few_all,
             semi-supervised adds unlabeled.json (as scripts/news.py);
             patterns N1, N2; modes zero-shot, few-shot, semi-supervised
  classifier [CLS] + dense (pet_keras.classifier) on the same labeled
             examples and model: the baseline

Every cell trains with pet_keras.train.fit_pet (or fit_classifier) as the
scripts do, under the same budget (pet_keras.budget: at most --steps steps,
validation every --eval-every, stop after --patience evaluations without a
better one) and the same learning-rate default (per mode; --lr overrides),
reporting validation accuracy at the best evaluation and test accuracy of
those weights, with the validation curve. Trained cells run each seed (mean ± sample std); zero-shot runs once.
Results are saved after every cell to <out>/accuracy.json, so a run resumes
where it stopped (done cells are skipped; settings and checkpoint weights
must match); the tables
go to <out>/accuracy.md and a chart to <out>/accuracy.png (with matplotlib).

    python benchmarks/accuracy.py                                       # everything (long)
    python benchmarks/accuracy.py --tasks sentiment --patterns P1 --seeds 1 --modes few-shot classifier --lr 3e-4
    python benchmarks/accuracy.py --quick                               # smoke run
    python benchmarks/accuracy.py --table-only                          # the tables of what is done

Several runs with the same settings fill one accuracy.json (e.g. the
trained modes for fewer patterns); --table-only then writes the tables of
the patterns and modes it is given, "not run" where a cell is missing.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)
from lexical import lexical_baseline  # noqa: E402

from pet_keras import argtypes, budget, presets, runtime, startup  # noqa: E402
from pet_keras.classifier import build_classifier, fit_classifier  # noqa: E402
from pet_keras.compat import keras  # noqa: E402
from pet_keras.data import split_labeled  # noqa: E402
from pet_keras.batching import PetDataGenerator  # noqa: E402
from pet_keras.model import build_mlm, load_config, load_tokenizer  # noqa: E402
from pet_keras.pattern import PVP  # noqa: E402
from pet_keras.verbalizer import Verbalizer  # noqa: E402
from pet_keras.presets import (
    NEWS_PATTERNS,
    SENTIMENT_PATTERNS,
    SENTIMENT_WORDS,
    TNEWS_FILES,
    TNEWS_LABELS,  # noqa: E402
    load_sentiment,
    read_news,
)
from pet_keras.io import sha256, write_text  # noqa: E402
from pet_keras.modes import CLASSIFIER, PET_MODES as MODES, training_sets  # noqa: E402
from pet_keras.train import fit_pet  # noqa: E402

LEXICAL = 'lexical'  # TF-IDF character n-grams + a linear SVM (benchmarks/lexical.py)
BASELINES = (CLASSIFIER, LEXICAL)
TASKS = {
    'sentiment': {'patterns': SENTIMENT_PATTERNS, 'words': SENTIMENT_WORDS, 'modes': MODES, 'maxlen': 128},
    'tnews': {
        'patterns': NEWS_PATTERNS,
        'words': {n: [n] for n in TNEWS_LABELS.values()},
        'modes': ('zero-shot', 'few-shot', 'semi-supervised'),
        'maxlen': 64,
    },
}
# the TNEWS file names scripts/news.py accepts, FewCLUE's first
# --quick: a smoke run
QUICK = {'seeds': 1, 'steps': 4, 'eval_every': 2, 'max_unlabeled': 256, 'max_eval': 256}
DEFAULTS = {'seeds': 3, 'steps': budget.STEPS, 'eval_every': budget.EVAL_EVERY, 'max_unlabeled': None, 'max_eval': None}
# the settings every cell of one accuracy.json shares (a resumed run must match)
SHARED_SETTINGS = (
    'checkpoint_dir',
    'model',
    'sentiment_dir',
    'tnews_dir',
    'steps',
    'eval_every',
    'patience',
    'lr',
    'batch_size',
    'mask_rate',
    'maxlen',
    'windows',
    'slot_loss',
    'prompt_only',
    'max_unlabeled',
    'max_eval',
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--checkpoint-dir',
        default=str(budget.EMBEDDED_CHECKPOINT),
        help='bert_config.json, bert_model.ckpt.*, vocab.txt (default: the embedded model)',
    )
    p.add_argument('--model', default='bert', help='bert4keras model family')
    p.add_argument('--tasks', nargs='+', choices=list(TASKS), default=list(TASKS))
    p.add_argument(
        '--patterns',
        nargs='+',
        help='presets (default: all of each task: %s; --quick: the first)'
        % ', '.join(n for t in TASKS.values() for n in t['patterns']),
    )
    p.add_argument(
        '--modes',
        nargs='+',
        choices=list(MODES) + list(BASELINES),
        default=list(MODES) + list(BASELINES),
        help='PET modes and the baselines: the [CLS] classifier and the lexical model, TF-IDF character '
        'n-grams + linear SVM (default all; tnews has no unsupervised)',
    )
    p.add_argument('--seeds', type=int, help='seeds 0..N-1 per trained cell (default 3)')
    p.add_argument('--steps', type=int, help='at most this many optimizer steps (default %d)' % budget.STEPS)
    p.add_argument('--eval-every', type=int, help='validation every N steps (default %d)' % budget.EVAL_EVERY)
    p.add_argument(
        '--patience',
        type=int,
        default=budget.PATIENCE,
        help='stop after N evaluations without a better validation accuracy (default %d)' % budget.PATIENCE,
    )
    p.add_argument('--lr', type=float, help="learning rate of every cell (default: pet_keras.budget's, per mode)")
    p.add_argument('--windows', action='store_true', help='PET reads long texts whole, in windows (PVP.text_windows)')
    p.add_argument('--slot-loss', choices=budget.SLOT_LOSSES, default=budget.SLOT_LOSS, help="PET slot's training loss")
    p.add_argument('--prompt-only', action='store_true', help="PET trains only the embeddings of the pattern's [P]")
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--mask-rate', type=float, default=0.15)
    p.add_argument(
        '--labeled-share',
        type=argtypes.share,
        default=budget.LABELED_SHARE,
        help="semi-supervised cells: the labeled examples' share of the stream, or 'natural' (default %s)"
        % (budget.LABELED_SHARE or 'natural'),
    )
    p.add_argument('--maxlen', type=int, help='default: sentiment 128, tnews 64 (as the scripts)')
    p.add_argument('--max-unlabeled', type=int, help='use only the first N unlabeled texts (quick runs)')
    p.add_argument('--max-eval', type=int, help='use only the first N validation and test examples (quick runs)')
    p.add_argument('--sentiment-dir', default=str(common.SENTIMENT_DIR))
    p.add_argument('--tnews-dir', default=str(common.TNEWS_DIR))
    p.add_argument('--out', default=str(common.REPO / 'results'), help='folder for accuracy.json/.md/.png')
    p.add_argument(
        '--work-dir',
        default=str(common.REPO / 'runs' / 'benchmark-cells'),
        help='where a PET cell trains, so a stopped benchmark resumes inside the cell it was running',
    )
    p.add_argument(
        '--template',
        nargs=2,
        action='append',
        default=[],
        metavar=('NAME', 'TEMPLATE'),
        help="one more pattern for every task, named for --patterns (e.g. PT '[P][P][P][P]____[P][P][P][P]{text}')",
    )
    p.add_argument('--quick', action='store_true', help='1 seed, 4 steps, the first pattern, small data')
    p.add_argument(
        '--table-only', action='store_true', help='write the tables and chart from <out>/accuracy.json; run no cell'
    )
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    presets = {name for task in args.tasks for name in TASKS[task]['patterns']} | {n for n, _ in args.template}
    if args.patterns is None:
        args.patterns = [
            name for task in args.tasks for name in list(TASKS[task]['patterns'])[: 1 if args.quick else None]
        ]
    unknown = [name for name in args.patterns if name not in presets]
    if unknown:
        p.error(
            '--patterns: %s not presets of %s (%s)'
            % (', '.join(unknown), ', '.join(args.tasks), ', '.join(sorted(presets)))
        )
    args.checkpoint_dir = os.path.abspath(args.checkpoint_dir)
    return args


class TaskData:
    """A task's examples and its pattern-verbalizer settings."""

    def __init__(self, name, labeled, unlabeled, valid, test, source, args):
        spec = TASKS[name]
        self.name, self.source = name, source
        self.labeled = labeled
        self.unlabeled = unlabeled[: args.max_unlabeled] if args.max_unlabeled is not None else unlabeled
        self.valid = valid[: args.max_eval] if args.max_eval is not None else valid
        self.test = test[: args.max_eval] if args.max_eval is not None else test
        # lr_sweep's and few_shot_selection's own flags have no --template
        self.templates = dict(spec['patterns'], **dict(getattr(args, 'template', ())))
        self.patterns = [p for p in args.patterns if p in self.templates]
        self.modes = [m for m in args.modes if m in spec['modes'] or m in BASELINES]
        self.verbalizer = Verbalizer(spec['words'])
        self.labels = self.verbalizer.labels
        self.maxlen = args.maxlen or spec['maxlen']

    def sizes(self):
        return {
            'labeled': len(self.labeled),
            'unlabeled': len(self.unlabeled),
            'valid': len(self.valid),
            'test': len(self.test),
        }


def load_task(name, args):
    if name == 'sentiment':
        train, valid, test = load_sentiment(args.sentiment_dir)
        labeled, unlabeled = split_labeled(train, 0.01)  # the first 1%, as scripts/sentiment.py
        return TaskData(
            name, labeled, unlabeled, list(valid), list(test), common.portable_path(args.sentiment_dir), args
        )
    path = {
        split: presets.data_file(args.tnews_dir, names, required=split != 'unlabeled')
        for split, names in TNEWS_FILES.items()
    }
    unlabeled = list(read_news(path['unlabeled'], labeled=False)) if path['unlabeled'] else []
    return TaskData(
        name,
        list(read_news(path['train'])),
        unlabeled,
        list(read_news(path['valid'])),
        list(read_news(path['test'])),
        common.portable_path(args.tnews_dir),
        args,
    )


class Checkpoint:
    def __init__(self, folder):
        self.config_path, self.checkpoint_path, self.dict_path = startup.checkpoint_files(folder)
        self.tokenizer = load_tokenizer(self.dict_path, load_config(self.config_path), self.config_path)


def cell_key(task, mode, pattern, seed):
    return '%s/%s/%s/seed%d' % (task, mode, pattern or '-', seed)


def cells(tasks, seeds):
    """(task, mode, pattern, seed) of every cell, in run order."""
    for task in tasks:
        for mode in task.modes:
            if mode in BASELINES:  # the lexical model has no randomness: one seed
                for seed in range(seeds if mode == CLASSIFIER else 1):
                    yield task, mode, None, seed
                continue
            for pattern in task.patterns:
                for seed in range(1 if mode == 'zero-shot' else seeds):  # zero-shot has no randomness
                    yield task, mode, pattern, seed


def cell_record(results, **more):
    """What a cell keeps of a fit_pet / fit_classifier results dict."""
    kept = (
        'valid',
        'test',
        'best_step',
        'zero_shot',
        'step_0',
        'evaluations',
    )  # step_0: a classifier's untrained model
    return dict(
        {key: results[key] for key in kept if key in results}, learning_rate=results['budget']['learning_rate'], **more
    )


def run_pet(task, mode, pattern, seed, ckpt, args, out_dir, resume=False):
    labeled, unlabeled = training_sets(mode, task.labeled, task.unlabeled)
    pvp = PVP(task.templates[pattern], task.verbalizer, ckpt.tokenizer, task.maxlen, windows=args.windows)
    generator = None
    if labeled or unlabeled:
        generator = PetDataGenerator(
            pvp, labeled, unlabeled, args.batch_size, args.mask_rate, seed=seed, labeled_share=args.labeled_share
        )
    mlm = build_mlm(ckpt.config_path, ckpt.checkpoint_path, model=args.model, dict_path=ckpt.dict_path)
    results = fit_pet(
        mlm,
        pvp,
        generator,
        task.valid,
        task.test,
        mode=mode,
        steps=args.steps,
        eval_every=args.eval_every,
        patience=args.patience,
        learning_rate=args.lr,
        slot_loss=args.slot_loss,
        prompt_only=args.prompt_only,
        out_dir=out_dir,
        resume=resume,
        verbose=2,
    )
    return cell_record(
        results,
        labeled=len(labeled),
        unlabeled=len(unlabeled),
        labeled_share=generator.labeled_share if generator else None,
        template=task.templates[pattern],
    )


def run_classifier(task, seed, ckpt, args, out_dir):
    model = build_classifier(ckpt.config_path, ckpt.checkpoint_path, len(task.labels), model=args.model)
    results = fit_classifier(
        model,
        ckpt.tokenizer,
        task.labels,
        task.labeled,
        task.valid,
        task.test,
        steps=args.steps,
        eval_every=args.eval_every,
        patience=args.patience,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        maxlen=task.maxlen,
        out_dir=out_dir,
        verbose=2,
    )
    return cell_record(results, labeled=len(task.labeled), unlabeled=0)


def cell_folder(args, key):
    return os.path.join(args.work_dir, key.replace('/', '-'))


def run_cell(task, mode, pattern, seed, ckpt, args, cell_dir=None):
    """One cell's record. A PET cell given ``cell_dir`` trains there and
    resumes the run an interrupted benchmark left in it (same seed, same
    batches), so a long cell survives a stop; the folder goes when the cell
    is done. Without it, and for the classifier, weights live in a temporary folder."""
    runtime.seed(seed)
    started = time.time()
    if mode == LEXICAL:
        record = lexical_baseline(task.labeled, task.valid, task.test, seed)
        record.pop('grid')
        record.update(task=task.name, mode=mode, pattern=None, seed=seed, wall_seconds=record.pop('seconds'))
        return record
    if cell_dir and mode != CLASSIFIER:
        record = run_pet(task, mode, pattern, seed, ckpt, args, cell_dir, resume=True)
        shutil.rmtree(cell_dir)
    else:
        with tempfile.TemporaryDirectory(prefix='accuracy_cell_') as out_dir:  # weights are not kept
            if mode == CLASSIFIER:
                record = run_classifier(task, seed, ckpt, args, out_dir)
            else:
                record = run_pet(task, mode, pattern, seed, ckpt, args, out_dir)
    keras.backend.clear_session()
    record.update(task=task.name, mode=mode, pattern=pattern, seed=seed, wall_seconds=round(time.time() - started, 1))
    return record


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(results):
    """Per (task, mode, pattern): mean and sample std of valid and test over seeds, mean wall time."""
    groups = {}
    for record in results['cells'].values():
        groups.setdefault((record['task'], record['mode'], record['pattern'] or '-'), []).append(record)
    summary = {}
    for (task, mode, pattern), records in sorted(groups.items()):
        entry = {'seeds': sorted(r['seed'] for r in records)}
        for key in ('valid', 'test'):
            entry[key + '_mean'], entry[key + '_std'] = mean_std([r[key] for r in records])
        entry['wall_seconds_mean'] = float(np.mean([r['wall_seconds'] for r in records]))
        summary['%s/%s/%s' % (task, mode, pattern)] = entry
    return summary


def accuracy_text(entry, seeds):
    """'valid / test' of a summary entry; a cell with fewer than ``seeds`` seeds done says how many."""
    if entry is None:
        return 'not run'

    def one(key):
        mean, std = entry[key + '_mean'], entry[key + '_std']
        if mean is None:
            return '-'
        return '%.2f' % (100 * mean) if len(entry['seeds']) == 1 else '%.1f ± %.1f' % (100 * mean, 100 * std)

    text = '%s / %s' % (one('valid'), one('test'))
    done = len(entry['seeds'])
    return text if done >= seeds else '%s (%d of %d seeds)' % (text, done, seeds)


def share_text(results, task):
    """The labeled share(s) the task's semi-supervised cells trained with, as a sentence ('' without any)."""
    shares = sorted(
        {
            '%g' % c['labeled_share'] if c.get('labeled_share') else 'natural'
            for c in results['cells'].values()
            if c['task'] == task.name and c['mode'] == 'semi-supervised'
        }
    )
    return ' Semi-supervised: labeled share %s.' % ', '.join(shares) if shares else ''


def markdown(results, tasks):
    summary = results['summary']
    # the most seeds any trained cell has: cells with fewer are partial (zero-shot runs once)
    seeds = max([len(e['seeds']) for key, e in summary.items() if '/zero-shot/' not in key], default=1)
    lines = [
        '# PET accuracy',
        '',
        'Made by %s. Checkpoint `%s`; at most %d steps, validation every %d, stop after %d evaluations '
        'without a better one; lr %s; batch %d%s. Each cell: validation accuracy (%%) at the best evaluation / '
        'test accuracy of those weights; several seeds: mean ± sample std. Zero-shot runs once (it has no '
        'randomness).'
        % (
            '; '.join('`%s`' % c for c in results['commands']),
            results['settings']['checkpoint_dir'],
            results['settings']['steps'],
            results['settings']['eval_every'],
            results['settings']['patience'],
            '%g' % results['settings']['lr'] if results['settings']['lr'] else 'the default of each mode',
            results['settings']['batch_size'],
            '; long texts in windows' if results['settings'].get('windows') else '',
        ),
    ]
    for task in tasks:
        modes = [m for m in TASKS[task.name]['modes'] if m in task.modes]
        sizes = task.sizes()
        lines += [
            '',
            '## %s' % task.name,
            '',
            '`%s`: %d labeled, %d unlabeled, valid %d, test %d.%s'
            % (
                task.source,
                sizes['labeled'],
                sizes['unlabeled'],
                sizes['valid'],
                sizes['test'],
                share_text(results, task),
            ),
            '',
        ]
        rows, times = [], []
        for pattern in task.patterns:
            entries = [summary.get('%s/%s/%s' % (task.name, m, pattern)) for m in modes]
            label = '%s `%s`' % (pattern, task.templates[pattern])
            rows.append([label] + [accuracy_text(e, 1 if m == 'zero-shot' else seeds) for m, e in zip(modes, entries)])
            times.append([label] + ['%.0f' % e['wall_seconds_mean'] if e else '' for e in entries])
        for name, label, baseline_seeds in (
            (CLASSIFIER, 'classifier ([CLS] + dense, the labeled examples)', seeds),
            (LEXICAL, 'lexical (TF-IDF character n-grams + linear SVM, the labeled examples)', 1),
        ):
            baseline = summary.get('%s/%s/-' % (task.name, name))
            if baseline:
                cells_text = [accuracy_text(baseline, baseline_seeds) if m == 'few-shot' else '' for m in modes]
                rows.append([label] + cells_text)
                times.append(
                    [label] + ['%.0f' % baseline['wall_seconds_mean'] if m == 'few-shot' else '' for m in modes]
                )
        lines += [
            common.markdown_table(['pattern'] + modes, rows),
            '',
            'Wall time per cell (s, mean over seeds):',
            '',
            common.markdown_table(['pattern'] + modes, times),
        ]
    return '\n'.join(lines) + '\n'


def percent(entry, key, missing):
    return 100 * entry[key] if entry and entry[key] is not None else missing


def chart(results, tasks, path):
    """Test accuracy per pattern and mode (bars; error bars: std over seeds)."""
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('chart skipped: matplotlib is not installed (pip install -r benchmarks/requirements.txt)')
        return False
    summary = results['summary']
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        modes = [m for m in TASKS[task.name]['modes'] if m in task.modes and m != CLASSIFIER]
        width = 0.8 / max(1, len(modes))
        for i, mode in enumerate(modes):
            entries = [summary.get('%s/%s/%s' % (task.name, mode, p)) for p in task.patterns]
            ax.bar(
                np.arange(len(task.patterns)) + (i - (len(modes) - 1) / 2) * width,
                [percent(e, 'test_mean', np.nan) for e in entries],
                width,
                yerr=[percent(e, 'test_std', 0) for e in entries],
                label=mode,
                capsize=2,
                color='C%d' % MODES.index(mode),
            )  # a mode has one colour in every task
        groups = list(task.patterns)
        baseline = summary.get('%s/%s/-' % (task.name, CLASSIFIER))
        if baseline:
            ax.bar(
                len(groups),
                percent(baseline, 'test_mean', np.nan),
                width,
                yerr=percent(baseline, 'test_std', 0),
                color='grey',
                label='classifier (few-shot labels)',
                capsize=2,
            )
            groups.append(CLASSIFIER)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups)
        ax.set_ylim(0, 130)  # room for the legend above the bars
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel('test accuracy (%)')
        ax.set_title(task.name)
        ax.legend(fontsize='small', ncol=2, loc='upper center')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def load_results(path, settings):
    """The saved results to resume, or a new record; refuses other settings."""
    if not path.exists():
        return {'settings': settings, 'cells': {}, 'commands': []}
    with open(path, encoding='utf-8') as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit(
                'error: %s:%d: not valid JSON (%s); move it away to start afresh' % (path, e.lineno, e.msg)
            )
    differ = {
        k: (results.get('settings', {}).get(k), v)
        for k, v in settings.items()
        if results.get('settings', {}).get(k) != v
    }
    if differ:
        raise SystemExit(
            'error: %s was made with other settings (saved → now: %s); pass another --out or move '
            'it away' % (path, '; '.join('%s %r → %r' % (k, a, b) for k, (a, b) in differ.items()))
        )
    return results


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    ckpt = Checkpoint(args.checkpoint_dir)
    settings = {
        k: common.portable_path(getattr(args, k)) if k.endswith('_dir') else getattr(args, k) for k in SHARED_SETTINGS
    }
    for key, default in (('windows', False), ('slot_loss', budget.SLOT_LOSS), ('prompt_only', False)):
        if settings[key] == default:  # grids made before the flag existed have no such key
            del settings[key]
    # the weights, not only the folder: a checkpoint pretrained on in place must not resume an older grid
    # (the .index holds every tensor's checksum)
    settings['checkpoint_index_sha256'] = sha256(ckpt.checkpoint_path + '.index')
    results = load_results(out / 'accuracy.json', settings)
    if not args.table_only:
        command = common.command_line('benchmarks/accuracy.py', sys.argv[1:] if argv is None else argv)
        if command not in results['commands']:
            results['commands'].append(command)
    tasks = [load_task(name, args) for name in args.tasks]
    for task in tasks:
        results.setdefault('data', {})[task.name] = dict(task.sizes(), source=task.source)
    todo = [] if args.table_only else list(cells(tasks, args.seeds))
    for number, (task, mode, pattern, seed) in enumerate(todo, 1):
        key = cell_key(task.name, mode, pattern, seed)
        saved = results['cells'].get(key)
        if saved and saved.get('template', task.templates.get(pattern)) != task.templates.get(pattern):
            raise SystemExit(
                'error: %s was run with pattern %r; name --template %r otherwise'
                % (key, saved['template'], task.templates[pattern])
            )
        if saved:
            print('[%d/%d] %s: done, skipped' % (number, len(todo), key), flush=True)
            continue
        print('\n[%d/%d] %s' % (number, len(todo), key), flush=True)
        results['cells'][key] = run_cell(task, mode, pattern, seed, ckpt, args, cell_folder(args, key))
        results['summary'] = summarize(results)
        common.write_json(out / 'accuracy.json', results)
        write_text(str(out / 'accuracy.md'), markdown(results, tasks))
    results['summary'] = summarize(results)
    common.write_json(out / 'accuracy.json', results)
    write_text(str(out / 'accuracy.md'), markdown(results, tasks))
    drew = chart(results, tasks, out / 'accuracy.png')
    print('\n' + markdown(results, tasks))
    print('written %s' % ', '.join(str(out / n) for n in ['accuracy.json', 'accuracy.md'] + ['accuracy.png'] * drew))


if __name__ == '__main__':
    main()
