#!/usr/bin/env python
"""Many classes with label words of mixed lengths: FewCLUE IFLYTEK (119 app
categories named in 2-7 characters), zero-shot with each label's own name.

Measures zero-shot accuracy with a word's log-probability (sum over its
tokens) and with its mean per token (length_norm), and the scoring speed of
the mixed-length path (one pass per length per batch) against the equal-length
path (every label a distinct two-character word: one pass per batch, label
token logits only), on the same examples and model. With --few-shot it also
fine-tunes on the few-shot training set (fit_pet, the default budget and
learning rate) with the names and with the two-character words.

    python benchmarks/many_labels.py                           # embedded model, dev and test
    python benchmarks/many_labels.py --max-eval 400 --few-shot # shorter evaluation, plus few-shot
    python benchmarks/many_labels.py --max-eval 400 --few-shot --verbalizers two --windows  # whole texts
    python benchmarks/many_labels.py --few-shot --verbalizers two --lexical  # with the lexical expert

Writes <out>/many_labels.json.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)

from pet_keras import startup  # noqa: E402
from pet_keras.data import read_jsonl  # noqa: E402
from pet_keras.model import build_mlm, load_config, load_tokenizer  # noqa: E402
from pet_keras.pattern import PVP  # noqa: E402
from pet_keras.verbalizer import Verbalizer  # noqa: E402
from pet_keras import budget, lexical  # noqa: E402
from pet_keras.compat import keras  # noqa: E402
from pet_keras.batching import PetDataGenerator  # noqa: E402
from pet_keras.train import fit_pet  # noqa: E402
from pet_keras.scoring import Scorer  # noqa: E402

IFLYTEK_DIR = common.SHARED / 'datasets' / 'iflytek'
PATTERN = '这是一款____类的应用。{text}'
VERBALIZERS = {'names': 'names, log-probability', 'mean': 'names, mean per token', 'two': 'two characters each'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint-dir', default=str(budget.EMBEDDED_CHECKPOINT))
    p.add_argument('--data-dir', default=str(IFLYTEK_DIR))
    p.add_argument('--pattern', default=PATTERN)
    p.add_argument('--maxlen', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=64, help='scoring batch')
    p.add_argument('--train-batch-size', type=int, default=32)
    p.add_argument('--max-eval', type=int, help='only the first N dev and test examples')
    p.add_argument('--few-shot', action='store_true', help='also fine-tune on train_few_all (names, two characters)')
    p.add_argument('--steps', type=int, default=budget.STEPS)
    p.add_argument('--eval-every', type=int, default=budget.EVAL_EVERY)
    p.add_argument('--patience', type=int, default=budget.PATIENCE)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--verbalizers',
        nargs='+',
        choices=list(VERBALIZERS),
        default=list(VERBALIZERS),
        help='names: each label its own name; mean: the same, mean per token; two: two characters each',
    )
    p.add_argument(
        '--lexical', action='store_true', help='few-shot: also the lexical expert beside PET (pet_keras.lexical)'
    )
    p.add_argument('--windows', action='store_true', help='read long texts whole, in windows (PVP.text_windows)')
    p.add_argument('--slot-loss', choices=budget.SLOT_LOSSES, default=budget.SLOT_LOSS, help="PET slot's training loss")
    p.add_argument('--out', default=str(common.REPO / 'results'))
    return p.parse_args(argv)


def two_character_words(names):
    """A distinct two-character word per label (its first two characters, else
    another pair of them): the equal-length path FewCLUE's baseline uses."""
    words, taken = {}, set()
    for name in names:
        pairs = [name[i:j] for i in range(len(name)) for j in range(i + 2, i + 3) if j <= len(name)]
        pairs += [name[0] + c for c in name[2:]]
        word = next(p for p in pairs if p not in taken)
        taken.add(word)
        words[name] = [word]
    return words


def load_splits(data_dir, max_eval=None):
    """FewCLUE IFLYTEK's few-shot training set, dev and public test (their first ``max_eval``)."""
    data = Path(data_dir)

    def read(file):
        return list(read_jsonl(str(data / file), {'text': 'sentence'}, 'label_des'))

    return read('train_few_all.json'), read('dev_few_all.json')[:max_eval], read('test_public.json')[:max_eval]


def label_names(*splits):
    return sorted({e.label for split in splits for e in split})


def timed(scorer, examples):
    scorer.predict_proba(examples[: scorer.batch_size], verbose=False)  # traces every shape once
    started = time.perf_counter()
    probs = scorer.predict_proba(examples, verbose=False)
    return probs, time.perf_counter() - started


def few_shot(mlm, pvp, train, splits, args):
    """fit_pet on the labeled training set; the best weights' accuracy."""
    keras.utils.set_random_seed(args.seed)
    generator = PetDataGenerator(pvp, train, [], args.train_batch_size, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix='many_labels_') as out_dir:
        results = fit_pet(
            mlm,
            pvp,
            generator,
            splits['valid'],
            splits['test'],
            mode='few-shot',
            steps=args.steps,
            eval_every=args.eval_every,
            patience=args.patience,
            slot_loss=args.slot_loss,
            out_dir=out_dir,
            verbose=2,
        )
    record = {key: results[key] for key in ('valid', 'test', 'best_step', 'evaluations')}
    if args.lexical:
        _, record['lexical_expert'] = lexical.fit_expert(Scorer(mlm, pvp), train, splits['valid'], splits['test'])
        print('with the lexical expert: %s' % {k: record['lexical_expert'][k] for k in ('weight', 'valid', 'test')})
    return record


def main(argv=None):
    args = parse_args(argv)
    config_path, checkpoint_path, dict_path = startup.checkpoint_files(args.checkpoint_dir)
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)
    train, valid, test = load_splits(args.data_dir, args.max_eval)
    splits = {'valid': valid, 'test': test}
    names = label_names(train, valid, test)
    mlm = build_mlm(config_path, checkpoint_path, dict_path=dict_path)
    results = {
        'checkpoint': common.portable_path(args.checkpoint_dir),
        'pattern': args.pattern,
        'labels': len(names),
        'examples': dict({k: len(v) for k, v in splits.items()}, train=len(train)),
        'command': 'python benchmarks/many_labels.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
        'windows': args.windows,
        'slot_loss': args.slot_loss,
        'lexical': args.lexical,
        'runs': {},
    }
    if args.few_shot:
        results['budget'] = {
            'steps': args.steps,
            'eval_every': args.eval_every,
            'patience': args.patience,
            'batch_size': args.train_batch_size,
            'seed': args.seed,
        }
    verbalizers = {
        'names': Verbalizer({n: [n] for n in names}),
        'mean': Verbalizer({n: [n] for n in names}, length_norm=True),
        'two': Verbalizer(two_character_words(names)),
    }
    for key in args.verbalizers:
        title, verbalizer = VERBALIZERS[key], verbalizers[key]
        pvp = PVP(args.pattern, verbalizer, tokenizer, args.maxlen, windows=args.windows)
        scorer = Scorer(mlm, pvp, batch_size=args.batch_size)
        run = {'slot_lengths': list(pvp.slot_lengths)}
        for split, examples in splits.items():
            probs, seconds = timed(scorer, examples)
            gold = [pvp.label_index[e.label] for e in examples]
            run[split] = float((probs.argmax(1) == gold).mean())
            run[split + '_examples_per_second'] = round(len(examples) / seconds, 2)
        print(
            '%s: lengths %s, valid %.4f, test %.4f, %.1f / %.1f examples/s'
            % (
                title,
                run['slot_lengths'],
                run['valid'],
                run['test'],
                run['valid_examples_per_second'],
                run['test_examples_per_second'],
            ),
            flush=True,
        )
        if args.few_shot and not verbalizer.length_norm:
            run['few_shot'] = few_shot(
                build_mlm(config_path, checkpoint_path, dict_path=dict_path), pvp, train, splits, args
            )
            print(
                '%s, few-shot: valid %.4f, test %.4f (best step %d)'
                % (title, run['few_shot']['valid'], run['few_shot']['test'], run['few_shot']['best_step']),
                flush=True,
            )
        results['runs'][title] = run
        common.write_json(Path(args.out) / 'many_labels.json', results)
    common.write_json(Path(args.out) / 'many_labels.json', results)


if __name__ == '__main__':
    main()
