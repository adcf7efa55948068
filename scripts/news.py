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
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.data import TNEWS_FILES, TNEWS_LABELS, Dataset, read_news, split_labeled
from pet_keras.generator import PetDataGenerator
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import NEWS_PATTERNS, PVP
from pet_keras.train import fit_pet, training_sets

p = cli.parser(__doc__, NEWS_PATTERNS, 'N1', 'folder with the TNEWS files (required)', labeled_fraction=1.0, maxlen=64)


def main(args):
    if not args.data_dir:
        p.error('--data-dir is required (e.g. ../shared/datasets/tnews)')
    out = args.out or 'runs/news-%s-%s' % (args.mode, args.pattern if args.pattern in NEWS_PATTERNS else 'custom')
    cli.check_start(args, out)
    strategy = cli.strategy(args)  # first: multi-worker sets up TensorFlow
    cli.seed_everything(args.seed)
    cli.set_precision(args)

    def data_file(split):
        return cli.data_file(args.data_dir, TNEWS_FILES[split], required=split != 'unlabeled')

    # data: FewCLUE keeps unlabeled text in its own file; otherwise --labeled-fraction splits train
    train, valid, test = (read_news(data_file(s)) for s in ('train', 'valid', 'test'))
    more = read_news(data_file('unlabeled'), labeled=False) if data_file('unlabeled') else Dataset()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled + more)
    print('labeled %d, unlabeled %d, valid %d, test %d' % (len(labeled), len(unlabeled), len(valid), len(test)))
    cli.check_data(args, labeled, unlabeled, train, valid, test, more)

    # tokenizer
    config_path, checkpoint_path, dict_path = cli.checkpoint_paths(args)
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)

    # pattern and verbalizer: each label's own name
    pvp = PVP(cli.pattern_template(args, NEWS_PATTERNS),
              cli.verbalizer(args, {n: [n] for n in TNEWS_LABELS.values()}), tokenizer, args.maxlen)

    # model (built and trained under the strategy), training and evaluation
    if args.mode == cli.CLASSIFIER:  # the baseline: a [CLS] classifier on the same labeled examples, no pattern
        with strategy.scope():
            model = build_classifier(config_path, checkpoint_path, len(pvp.labels), args.model)
        fit_classifier(model, tokenizer, pvp.labels, labeled, valid, test, batch_size=args.batch_size,
                       maxlen=args.maxlen, out_dir=out, settings=vars(args), **cli.budget_args(args))
    else:
        train_generator = PetDataGenerator(pvp, labeled, unlabeled, args.batch_size, args.mask_rate,
                                           seed=args.seed) if labeled or unlabeled else None
        with strategy.scope():
            mlm = build_mlm(config_path, checkpoint_path, model=args.model,
                            allow_random_mlm_head=args.allow_random_mlm_head, dict_path=dict_path)
        fit_pet(mlm, pvp, train_generator, valid, test, resume=args.resume, out_dir=out, settings=vars(args),
                tensorboard=args.tensorboard, calibrate=args.calibrate, **cli.budget_args(args))


cli.main(p, main)
