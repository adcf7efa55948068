#!/usr/bin/env python
"""PET for Chinese news title classification, TNEWS (after the reference tnews.py).

    python scripts/news.py --data-dir ../shared/datasets/tnews --mode few-shot
    python scripts/news.py --data-dir ../shared/datasets/tnews --mode zero-shot --pattern N2

Data (JSON lines): FewCLUE TNEWS files train_few_all.json, dev_few_all.json,
test_public.json, unlabeled.json ({"sentence", "label", "label_desc"}), or the
reference's train.json, dev.json, test.json ({"text", "label_name"}). Label
words are the two-character Chinese names (故事, 文化, 娱乐, 体育 …).
"""

from pet_keras import cli
from pet_keras.config import RunConfig, TaskSpec, label_words, preset_template
from pet_keras.presets import NEWS_PATTERNS, NEWS_WORDS, TNEWS_FILES, read_news, read_folder
from pet_keras.runner import run

p = cli.script_parser(
    __doc__, NEWS_PATTERNS, 'N1', 'folder with the TNEWS files (required)', labeled_fraction=1.0, maxlen=64
)


def main(args):
    if not args.data_dir:
        p.error('--data-dir is required (e.g. ../shared/datasets/tnews)')

    # data: FewCLUE keeps unlabeled text in its own file; otherwise --labeled-fraction splits train
    train, valid, test, unlabeled = read_folder(args.data_dir, TNEWS_FILES, read_news)

    # pattern and label words (each label's own name)
    template = preset_template(args.pattern, NEWS_PATTERNS)
    words = label_words(args.label_words, NEWS_WORDS)

    # model, training and evaluation by --mode: PET's masked LM, or the [CLS] classifier
    task = TaskSpec.from_flags(args, 'news', template, words, train, valid, test, unlabeled)
    pattern = args.pattern if args.pattern in NEWS_PATTERNS else 'custom'
    run(task, RunConfig.from_flags(args, out='runs/news-%s-%s' % (args.mode, pattern)))


cli.run(p, main)
