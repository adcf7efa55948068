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

from pet_keras import cli
from pet_keras.config import RunConfig, TaskSpec, label_words, preset_template
from pet_keras.presets import PAIR_PATTERNS, PAIR_WORDS, PAIR_FILES, read_pairs, read_folder
from pet_keras.runner import run

p = cli.script_parser(
    __doc__, PAIR_PATTERNS, 'Q1', 'folder with the pair files (required; names above)', labeled_fraction=1.0, maxlen=64
)


def main(args):
    if not args.data_dir:
        p.error('--data-dir is required (a folder with train/dev/test pair files)')

    # data: FewCLUE keeps unlabeled text in its own file; otherwise --labeled-fraction splits train
    train, valid, test, unlabeled = read_folder(args.data_dir, PAIR_FILES, read_pairs)

    # pattern and label words (是的 same, 不是 different)
    template = preset_template(args.pattern, PAIR_PATTERNS)
    words = label_words(args.label_words, PAIR_WORDS)

    # model, training and evaluation by --mode: PET's masked LM, or the [CLS] classifier
    task = TaskSpec.from_flags(args, 'pair', template, words, train, valid, test, unlabeled)
    pattern = args.pattern if args.pattern in PAIR_PATTERNS else 'custom'
    run(task, RunConfig.from_flags(args, out='runs/pair-%s-%s' % (args.mode, pattern)))


cli.run(p, main)
