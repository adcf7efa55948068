#!/usr/bin/env python
"""PET for Chinese sentence pairs: do two sentences mean the same (LCQMC, BUSTM, AFQMC)?

    python scripts/pair.py --data-dir path/to/bustm --mode few-shot
    python scripts/pair.py --data-dir path/to/lcqmc --labeled-fraction 0.001 --pattern Q2

Data (in --data-dir; for each split the first name found is read):
  train      train_few_all.json, train.json, train.tsv, train.txt
  valid      dev_few_all.json, dev.json, dev.tsv, dev.txt
  test       test_public.json, test.json, test.tsv, test.txt
  unlabeled  unlabeled.json, unlabeled.tsv (optional)
.json files are JSON lines {"sentence1", "sentence2", "label"} (FewCLUE BUSTM,
CLUE LCQMC/AFQMC); other files are tab-separated sentence1<TAB>sentence2<TAB>label
(LCQMC's release), unlabeled ones sentence1<TAB>sentence2. Labels 0/1 (numbers or
strings) are 'different'/'same'; train, valid and test must be labeled (CLUE's
own test.json is not: use its dev file as test). Patterns have the fields {a}
(sentence1) and {b} (sentence2); when too long, the longer sentence is cut
first, never the pattern or the slot. Label words: 是的 (same) / 不是 (different).
"""

from pet_keras import cli, runtime, startup
from pet_keras.data import Dataset, split_labeled
from pet_keras.pattern import PVP
from pet_keras.task import fit, load_checkpoint
from pet_keras.presets import PAIR_FILES, PAIR_PATTERNS, PAIR_WORDS, read_pairs
from pet_keras.modes import training_sets

p = cli.script_parser(
    __doc__, PAIR_PATTERNS, 'Q1', 'folder with the pair files (required; names above)', labeled_fraction=1.0, maxlen=64
)


def main(args):
    if not args.data_dir:
        p.error('--data-dir is required (a folder with train/dev/test pair files)')
    out = args.out or 'runs/pair-%s-%s' % (args.mode, args.pattern if args.pattern in PAIR_PATTERNS else 'custom')
    startup.check_start(args, out)
    strategy = runtime.strategy(args)  # first: multi-worker sets up TensorFlow
    runtime.seed(args.seed)
    runtime.set_precision(args)

    # data: FewCLUE keeps unlabeled pairs in their own file; otherwise --labeled-fraction splits train
    train, valid, test = (
        read_pairs(startup.data_file(args.data_dir, PAIR_FILES[s])) for s in ('train', 'valid', 'test')
    )
    unlabeled_file = startup.data_file(args.data_dir, PAIR_FILES['unlabeled'], required=False)
    more = read_pairs(unlabeled_file, labeled=False) if unlabeled_file else Dataset()
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

    # pattern and verbalizer
    pvp = PVP(
        startup.pattern_template(args, PAIR_PATTERNS),
        startup.verbalizer(args, PAIR_WORDS),
        checkpoint.tokenizer,
        args.maxlen,
    )

    # model (built under the strategy), training and evaluation: PET, or the [CLS] classifier by --mode
    fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy)


cli.run(p, main)
