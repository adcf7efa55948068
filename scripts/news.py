#!/usr/bin/env python
"""PET for Chinese news title classification, TNEWS (after the reference tnews.py).

    python scripts/news.py --data-dir ../shared/datasets/tnews --mode few-shot
    python scripts/news.py --data-dir ../shared/datasets/tnews --mode zero-shot --pattern N2

Data (JSON lines): FewCLUE TNEWS files train_few_all.json, dev_few_all.json,
test_public.json, unlabeled.json ({"sentence", "label", "label_desc"}), or the
reference's train.json, dev.json, test.json ({"text", "label_name"}). Label
words are the two-character Chinese names (故事, 文化, 娱乐, 体育 …).
"""

from pet_keras import cli, runtime, startup
from pet_keras.data import Dataset, split_labeled
from pet_keras.pattern import PVP
from pet_keras.task import fit, load_checkpoint
from pet_keras.presets import NEWS_PATTERNS, NEWS_WORDS, TNEWS_FILES, read_news
from pet_keras.modes import training_sets

p = cli.script_parser(
    __doc__, NEWS_PATTERNS, 'N1', 'folder with the TNEWS files (required)', labeled_fraction=1.0, maxlen=64
)


def main(args):
    if not args.data_dir:
        p.error('--data-dir is required (e.g. ../shared/datasets/tnews)')
    out = args.out or 'runs/news-%s-%s' % (args.mode, args.pattern if args.pattern in NEWS_PATTERNS else 'custom')
    startup.check_start(args, out)
    strategy = runtime.strategy(args)  # first: multi-worker sets up TensorFlow
    runtime.seed(args.seed)
    runtime.set_precision(args)

    # data: FewCLUE keeps unlabeled text in its own file; otherwise --labeled-fraction splits train
    train, valid, test = (
        read_news(startup.data_file(args.data_dir, TNEWS_FILES[s])) for s in ('train', 'valid', 'test')
    )
    unlabeled_file = startup.data_file(args.data_dir, TNEWS_FILES['unlabeled'], required=False)
    more = read_news(unlabeled_file, labeled=False) if unlabeled_file else Dataset()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled + more)
    valid = None if args.no_valid else valid  # the steps chosen by cross-validation over the labeled examples
    print(
        'labeled %d, unlabeled %d, valid %s, test %d'
        % (len(labeled), len(unlabeled), 'left out' if valid is None else len(valid), len(test))
    )
    startup.check_data(args, labeled, unlabeled, train, valid, test, more)

    # tokenizer
    checkpoint = load_checkpoint(args)

    # pattern and verbalizer: each label's own name
    pvp = PVP(
        startup.pattern_template(args, NEWS_PATTERNS),
        startup.verbalizer(args, NEWS_WORDS),
        checkpoint.tokenizer,
        args.maxlen,
    )

    # model (built under the strategy), training and evaluation: PET, or the [CLS] classifier by --mode
    fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy)


cli.run(p, main)
