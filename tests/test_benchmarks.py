"""The benchmarks (benchmarks/): the reference approach they measure against
does the same work as pet_keras (same inputs, same loss, same predictions),
the FLOP formula, the scoring switches, and smoke runs of speed.py and
accuracy.py on a tiny checkpoint. No speed is asserted."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bert4keras.optimizers import Adam
from pet_keras import compat
from pet_keras.presets import TNEWS_LABELS
from pet_keras.batching import positions_batch
from pet_keras.model import build_mlm
from pet_keras.pattern import PVP
from pet_keras.verbalizer import Verbalizer
from pet_keras.scoring import Scorer
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS
from tiny import ex, make_tokenizer, sharpened_mlm, vocab_tokens, write_vocab

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))
import accuracy as accuracy_benchmark  # noqa: E402
import baselines  # noqa: E402
import common  # noqa: E402
import few_shot_selection  # noqa: E402
import many_labels  # noqa: E402
import reference  # noqa: E402
import speed  # noqa: E402

CHARS = '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬东西南北红黄蓝白黑'


def text(rng):
    return ''.join(rng.choice(CHARS) for _ in range(rng.randint(5, 40)))


@pytest.fixture(scope='module')
def sharp_checkpoint(tmp_path_factory):
    """A tiny Google-format checkpoint whose slot distributions are far from
    uniform (so agreeing predictions mean something), with its vocab.txt."""
    folder = tmp_path_factory.mktemp('sharp_ckpt')
    dict_path = write_vocab(folder / 'vocab.txt')
    tf.random.set_seed(3)
    mlm = sharpened_mlm(len(vocab_tokens()), folder / 'config', dict_path=dict_path, seed=3)
    mlm.save_checkpoint(str(folder), mlm.config, dict_path)
    return folder


@pytest.fixture(scope='module')
def data_dirs(tmp_path_factory):
    """Tiny sentiment (TSV) and TNEWS (FewCLUE JSON lines) folders."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp('bench_data')
    (root / 'sentiment').mkdir()
    for split, n in (('train', 60), ('valid', 24), ('test', 24)):
        lines = ''.join('%s\t%d\n' % (text(rng), rng.randint(0, 1)) for _ in range(n))
        (root / 'sentiment' / ('sentiment.%s.data' % split)).write_text(lines, encoding='utf-8')
    (root / 'tnews').mkdir()
    descs = list(TNEWS_LABELS)[:3]
    for name, n, labeled in (
        ('train_few_all.json', 9, True),
        ('dev_few_all.json', 9, True),
        ('test_public.json', 9, True),
        ('unlabeled.json', 30, False),
    ):
        rows = []
        for i in range(n):
            row = {'sentence': text(rng), 'id': i}
            if labeled:
                row.update(label=100 + i % 3, label_desc=descs[i % 3])
            rows.append(json.dumps(row, ensure_ascii=False) + '\n')
        (root / 'tnews' / name).write_text(''.join(rows), encoding='utf-8')
    return root


def run(script, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / script), *map(str, args)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def sentiment_pvp(tokenizer, pattern='P1', maxlen=48):
    return PVP(SENTIMENT_PATTERNS[pattern], Verbalizer(SENTIMENT_WORDS), tokenizer, maxlen)


# the reference approach


@pytest.mark.parametrize('pattern, mask_idx', [('P1', 1), ('P5', 6)])
def test_reference_reads_the_same_inputs_as_pet_keras(pattern, mask_idx):
    tokenizer = make_tokenizer()
    pvp = sentiment_pvp(tokenizer, pattern)
    prefix, idx, label_ids = reference.reference_prefix(pvp)
    assert idx == mask_idx
    assert list(label_ids) == [tokenizer.token_to_id('不'), tokenizer.token_to_id('很')]
    rng = random.Random(1)
    examples = [ex(text(rng), rng.choice(['negative', 'positive'])) for _ in range(10)] + [ex('我' * 80, 'positive')]
    data = [(e.fields['text'], pvp.label_index[e.label]) for e in examples]
    generator = reference.ReferenceGenerator(tokenizer, data, prefix, idx, label_ids, maxlen=48, batch_size=4)
    rows = [row for (ids, _, _), _ in generator for row in ids]  # evaluation batches: file order
    for example, row in zip(examples, rows):
        encoded = pvp.encode(example).token_ids
        assert list(row[: len(encoded)]) == encoded and not row[len(encoded) :].any()


def test_reference_generator_targets():
    """Labeled text: the prefix, the slot masked with the label's token as
    its target; unlabeled: no prefix. Every changed token is predicted with
    its original as target; nothing else is."""
    tokenizer = make_tokenizer()
    pvp = sentiment_pvp(tokenizer)
    prefix, idx, label_ids = reference.reference_prefix(pvp)
    generator = reference.ReferenceGenerator(
        tokenizer, [('春夏秋冬', 1), ('东西南北', None)], prefix, idx, label_ids, maxlen=48, batch_size=2
    )
    originals = [tokenizer.encode(prefix + '春夏秋冬')[0], tokenizer.encode('东西南北')[0]]
    np.random.seed(0)
    predicted = 0
    for _ in range(20):  # masking and order are random; this holds for every draw
        (ids, _, targets), _ = next(iter(generator.__iter__(random=True)))
        lengths = np.count_nonzero(ids, axis=1)
        labeled, plain = (0, 1) if lengths[0] > lengths[1] else (1, 0)
        assert ids[labeled, idx] == tokenizer._token_mask_id and targets[labeled, idx] == label_ids[1]
        for row, original in ((labeled, originals[0]), (plain, originals[1])):
            assert lengths[row] == len(original)
            source, target = ids[row, : len(original)], targets[row, : len(original)].copy()
            assert not targets[row, len(original) :].any()
            if row == labeled:
                source, target, original = (np.delete(a, idx) for a in (source, target, original))
            assert (target[source != original] > 0).all()
            assert ((target == 0) | (target == original)).all()
            predicted += np.count_nonzero(target)
    assert predicted > 0


def test_reference_loss_equals_the_gathered_loss(sharp_checkpoint):
    """Both training models compute the same loss and accuracy on the same
    batch: the speed comparison compares equal work."""
    tokenizer = make_tokenizer()
    pvp = sentiment_pvp(tokenizer)
    prefix, idx, label_ids = reference.reference_prefix(pvp)
    rng = random.Random(2)
    data = [(text(rng), rng.choice([0, 1, None])) for _ in range(8)]
    generator = reference.ReferenceGenerator(tokenizer, data, prefix, idx, label_ids, maxlen=48, batch_size=8)
    np.random.seed(1)
    (ids, segments, targets), _ = next(iter(generator.__iter__(random=True)))
    assert (targets > 0).sum() > 8
    config, ckpt = str(sharp_checkpoint / 'bert_config.json'), str(sharp_checkpoint / 'bert_model.ckpt')
    reference_model = reference.reference_training_model(reference.build_reference_model(config, ckpt))
    reference_model.compile(optimizer=Adam(1e-5))
    gathered_model = build_mlm(config, ckpt).training_model()
    gathered_model.compile(optimizer=Adam(1e-5))
    ref_loss, ref_accuracy = reference_model.test_on_batch([ids, segments, targets])
    _, positions, gathered = positions_batch(ids, targets)
    loss, accuracy = gathered_model.test_on_batch([ids, segments, positions, gathered])
    assert ref_loss > 1.0
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    assert accuracy == pytest.approx(ref_accuracy, abs=1e-6)


# measuring in turns


def test_run_in_turns_interleaves_steps_in_order_and_applies_each_jobs_dtype_policy():
    log = []

    def job(steps):
        def run(turns, name):
            for step in range(steps):
                turns.wait(name)
                log.append((name, step, compat.keras.mixed_precision.global_policy().name))
                turns.done()
            return steps

        return run

    results = common.run_in_turns({'a': job(3), 'b': job(1), 'c': job(2)}, {'b': 'mixed_bfloat16'})
    assert list(results.items()) == [('a', 3), ('b', 1), ('c', 2)]  # the jobs' order, not their finishing order
    assert [(n, s) for n, s, _ in log] == [('a', 0), ('b', 0), ('c', 0), ('a', 1), ('c', 1), ('a', 2)]
    assert {p for n, _, p in log if n == 'b'} == {'mixed_bfloat16'}
    assert {p for n, _, p in log if n != 'b'} == {'float32'}
    assert compat.keras.mixed_precision.global_policy().name == 'float32'  # restored


def test_run_in_turns_raises_a_failing_job_without_stalling_the_others():
    done = []

    def failing(turns, name):
        turns.wait(name)
        raise ValueError('bad batch')

    def steady(turns, name):
        for _ in range(3):
            turns.wait(name)
            turns.done()
        done.append(name)

    with pytest.raises(RuntimeError, match='failing failed: bad batch'):
        common.run_in_turns({'failing': failing, 'steady': steady})
    assert done == ['steady']


def test_recorded_commands_hold_no_machine_paths():
    data = common.REPO.parent / 'shared' / 'datasets' / 'sentiment'
    command = common.command_line('benchmarks/accuracy.py', ['--sentiment-dir', str(data), '--seeds', 3])
    assert command == 'python benchmarks/accuracy.py --sentiment-dir ../shared/datasets/sentiment --seeds 3'


# what speed.py computes


def test_flop_formula_matches_torch_flop_counter():
    """common.forward_flops counts what PyTorch's FLOP counter counts for
    BertForMaskedLM (eager attention: its matmuls are visible) exactly."""
    torch = pytest.importorskip('torch')
    os.environ.setdefault('USE_TF', '0')
    transformers = pytest.importorskip('transformers')
    from torch.utils.flop_counter import FlopCounterMode

    sizes = {
        'vocab_size': 100,
        'hidden_size': 32,
        'num_hidden_layers': 2,
        'num_attention_heads': 2,
        'intermediate_size': 64,
        'max_position_embeddings': 64,
    }
    model = transformers.BertForMaskedLM(transformers.BertConfig(**sizes, attn_implementation='eager')).eval()
    for rows, length in ((3, 16), (2, 40)):
        with FlopCounterMode(display=False) as counter:
            model(input_ids=torch.randint(1, 100, (rows, length)))
        assert counter.get_total_flops() == common.forward_flops(sizes, rows, length, rows * length, 100)


def test_flops_of_a_last_layer_run_at_some_positions():
    sizes = {'hidden_size': 32, 'num_hidden_layers': 3, 'intermediate_size': 64}
    h, i, rows, length = 32, 64, 2, 10
    full = common.encoder_flops(sizes, rows, length)
    assert common.encoder_flops(sizes, rows, length, outputs=rows * length) == full
    # 5 positions instead of 20: queries, output projection, feed-forward and attention rows at 15 fewer
    saved = 15 * (2 * h * h + 2 * h * h + 4 * h * i + 4 * length * h)
    assert common.encoder_flops(sizes, rows, length, outputs=5) == full - saved
    assert common.forward_flops(
        sizes, rows, length, 5, 7, last_layer_at_positions=True
    ) == full - saved + common.head_flops(sizes, 5, 7)


def test_compare_predictions_counts_disagreements_outside_ties():
    reference_probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.50001, 0.49999], [0.6, 0.4]])
    same = speed.compare_predictions(reference_probs + 1e-7, reference_probs)
    assert same['disagreements_outside_ties'] == 0 and same['argmax_equal'] == 4
    swapped = reference_probs[:, ::-1].copy()
    result = speed.compare_predictions(swapped, reference_probs)
    assert result['near_ties'] == 1
    assert result['disagreements_outside_ties'] == 3  # the tie is not counted
    assert result['max_prob_diff'] == pytest.approx(0.8)


def test_scoring_switches_give_the_same_probabilities():
    """Scorer's fast paths off (baselines.ComparisonScorer: file order; label
    logits read from the full vocabulary logits) give the default's
    probabilities, with two-token label words and words of several lengths too."""
    tokenizer = make_tokenizer()
    tf.random.set_seed(4)
    mlm = sharpened_mlm(len(vocab_tokens()), seed=4)
    rng = random.Random(3)
    for words in (
        SENTIMENT_WORDS,
        {'negative': ['冷热', '黑白'], 'positive': ['春夏']},
        {'negative': ['冷', '黑白'], 'positive': ['春', '夏秋']},
    ):
        pvp = PVP('{text}____满意。', Verbalizer(words), tokenizer, maxlen=48)
        examples = [ex(text(rng)) for _ in range(20)]
        default = Scorer(mlm, pvp, batch_size=8).predict_proba(examples, verbose=False)
        assert np.ptp(default[:, 0]) > 0.1  # probabilities depend on the input
        for switches in ({'bucket': False}, {'label_tokens_only': False}):
            other = baselines.ComparisonScorer(mlm, pvp, batch_size=8, **switches).predict_proba(
                examples, verbose=False
            )
            np.testing.assert_allclose(other, default, atol=1e-5)


def test_file_order_batches_keep_the_order_and_pad_each_batch_to_a_multiple_of_8():
    tokenizer = make_tokenizer()
    words = {'negative': ['冷', '黑白'], 'positive': ['春夏秋']}
    pvp = PVP('{text}____满意。', Verbalizer(words), tokenizer, maxlen=48)
    rng = random.Random(5)
    examples = [ex(text(rng)) for _ in range(11)]
    seen = []
    for idx, inputs in baselines.file_order_batches(pvp, examples, 4):
        assert len(inputs) == 3 * len(pvp.slot_lengths)
        for length, ids in zip(pvp.slot_lengths, inputs[::3]):
            longest = max(len(pvp.encode(examples[i], length).token_ids) for i in idx)
            assert ids.shape == (len(idx), -(-longest // 8) * 8)
        seen.extend(idx.tolist())
    assert seen == list(range(11))


def test_accuracy_cells_with_fewer_seeds_say_how_many():
    def entry(valids, tests):
        mean_std = dict(zip(('valid_mean', 'valid_std'), accuracy_benchmark.mean_std(valids)))
        mean_std.update(zip(('test_mean', 'test_std'), accuracy_benchmark.mean_std(tests)))
        return dict(mean_std, seeds=list(range(len(valids))))

    three = entry([0.55, 0.57, 0.59], [0.50, 0.52, 0.54])
    assert accuracy_benchmark.accuracy_text(three, 3) == '57.0 ± 2.0 / 52.0 ± 2.0'
    one = entry([0.5732], [0.5471])
    assert accuracy_benchmark.accuracy_text(one, 1) == '57.32 / 54.71'  # zero-shot, or a 1-seed grid
    assert accuracy_benchmark.accuracy_text(one, 3) == '57.32 / 54.71 (1 of 3 seeds)'
    assert accuracy_benchmark.accuracy_text(None, 3) == 'not run'


def test_accuracy_takes_a_named_template_beside_the_presets():
    args = accuracy_benchmark.parse_args(
        ['--tasks', 'sentiment', '--patterns', 'P1', 'PT', '--template', 'PT', '[P][P]____[P]{text}']
    )
    assert args.patterns == ['P1', 'PT'] and args.template == [['PT', '[P][P]____[P]{text}']]
    with pytest.raises(SystemExit):
        accuracy_benchmark.parse_args(['--tasks', 'sentiment', '--patterns', 'PT'])  # no such preset


# smoke runs


def test_speed_quick_run(sharp_checkpoint, data_dirs, tmp_path):
    out = tmp_path / 'speed.json'
    result = run(
        'speed.py',
        '--quick',
        '--skip-base',
        '--skip-hf',
        '--mixed-precision',
        '--maxlen',
        48,
        '--checkpoint-dir',
        sharp_checkpoint,
        '--data-dir',
        data_dirs / 'sentiment',
        '--out',
        out,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text(encoding='utf-8'), parse_constant=lambda c: pytest.fail('not JSON: ' + c))
    assert '| model | phase | approach |' in result.stdout
    assert list(results['models']) == ['checkpoint']  # --skip-base
    # paths recorded relative to the repository: results/ is committed, machine paths are not
    assert results['settings']['data_dir'] == os.path.relpath(data_dirs / 'sentiment', REPO)
    assert results['models']['checkpoint']['checkpoint'] == os.path.relpath(sharp_checkpoint, REPO)
    part = results['models']['checkpoint']
    scoring, training = part['scoring'], part['training']
    assert scoring['examples'] == 48  # valid + test
    for key, agreement in scoring['agreement_with_reference'].items():
        assert key.startswith('pet_keras')  # --skip-hf
        if key == speed.MIXED:  # bfloat16: close, not equal
            assert agreement['max_prob_diff'] < 0.1 and agreement['argmax_equal'] >= 44, agreement
            continue
        assert agreement['argmax_equal'] == 48 and agreement['near_ties'] == 0, (key, agreement)
        assert agreement['max_prob_diff'] < 1e-5
    for section, rows in ((scoring, 48), (training, None)):
        for approach in ('pet_keras', 'reference'):
            measured = section[approach]
            assert measured['seconds'] > 0 and measured['flops'] > 0 and measured['tokens'] > 0
            assert rows is None or measured['rows'] == rows
        for name, value in section['ratios'].items():
            assert math.isfinite(value) and value > 0, name
    assert training['pet_keras']['steps'] == training['reference']['steps'] == 2
    for approach in ('pet_keras', 'pet_keras_no_bucket', speed.MIXED, 'reference'):
        steps = training[approach]['step_seconds']  # each timed step, within the total
        assert len(steps) == 2 and 0 < sum(steps) <= training[approach]['seconds'] + 0.01, (approach, steps)
    # the reference computes the vocabulary at every position: more FLOPs for the same rows
    assert scoring['reference']['flops'] > scoring['pet_keras']['flops']
    assert results['matmul_peak_gflops']['tensorflow'] > 0 and results['matmul_peak_gflops']['tensorflow_bfloat16'] > 0
    assert {'%s/reference' % speed.MIXED} <= set(scoring['ratios']) & set(training['ratios'])


def test_lr_sweep_chooses_on_validation_and_draws_curves(sharp_checkpoint, data_dirs, tmp_path):
    args = [
        '--quick',
        '--maxlen',
        48,
        '--modes',
        'few-shot',
        'classifier',
        '--lrs',
        '3e-3',
        '0',
        '--checkpoint-dir',
        sharp_checkpoint,
        '--sentiment-dir',
        data_dirs / 'sentiment',
        '--out',
        tmp_path,
    ]
    result = run('lr_sweep.py', *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = json.loads((tmp_path / 'lr_sweep.json').read_text(encoding='utf-8'))
    assert sorted(saved['cells']) == ['classifier/lr0', 'classifier/lr0.003', 'few-shot/lr0', 'few-shot/lr0.003']
    assert saved['settings']['steps'] == 4 and saved['settings']['checkpoint_dir'] == os.path.relpath(
        sharp_checkpoint, REPO
    )
    for key, cell in saved['cells'].items():
        assert cell['learning_rate'] == cell['lr'] and [r['step'] for r in cell['evaluations']] == [2, 4], key
    # at rate 0 the weights never move: every evaluation is the untrained model's
    assert {r['valid'] for r in saved['cells']['few-shot/lr0']['evaluations']} == {
        saved['cells']['few-shot/lr0']['zero_shot']['valid']
    }
    table = (tmp_path / 'lr_sweep.md').read_text(encoding='utf-8')
    for mode in ('few-shot', 'classifier'):
        cells = [saved['cells']['%s/lr%s' % (mode, lr)] for lr in ('0', '0.003')]
        best = max(cells, key=lambda c: c['valid'])
        assert '**%.2f @ %d / %.2f**' % (100 * best['valid'], best['best_step'], 100 * best['test']) in table, mode
    try:
        import matplotlib  # noqa: F401

        for mode in ('few-shot', 'classifier'):
            assert (tmp_path / ('curves-%s.png' % mode)).read_bytes()[:4] == b'\x89PNG'
    except ImportError:
        assert 'curves skipped' in result.stdout
    # a semi-supervised cell with a labeled share is a cell of its own, a row of its own
    semi = args[:3] + ['--modes', 'semi-supervised', '--lrs', '0', '--labeled-share', '0.5'] + args[9:]
    result = run('lr_sweep.py', *semi)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cell = json.loads((tmp_path / 'lr_sweep.json').read_text(encoding='utf-8'))['cells']['semi-supervised/lr0/share0.5']
    assert cell['labeled_share'] == 0.5 and cell['labeled'] and cell['unlabeled']
    assert '| semi-supervised, labeled share 0.5 | ' in (tmp_path / 'lr_sweep.md').read_text(encoding='utf-8')


def test_accuracy_quick_run_resumes(sharp_checkpoint, data_dirs, tmp_path):
    checkpoint_dir = tmp_path / 'checkpoint'
    shutil.copytree(sharp_checkpoint, checkpoint_dir)
    args = [
        '--quick',
        '--maxlen',
        48,
        '--modes',
        'zero-shot',
        'few-shot',
        'classifier',
        '--checkpoint-dir',
        checkpoint_dir,
        '--sentiment-dir',
        data_dirs / 'sentiment',
        '--tnews-dir',
        data_dirs / 'tnews',
        '--out',
        tmp_path,
    ]
    result = run('accuracy.py', *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = json.loads((tmp_path / 'accuracy.json').read_text(encoding='utf-8'))
    assert sorted(saved['cells']) == sorted(
        [
            'sentiment/zero-shot/P1/seed0',
            'sentiment/few-shot/P1/seed0',
            'sentiment/classifier/-/seed0',
            'tnews/zero-shot/N1/seed0',
            'tnews/few-shot/N1/seed0',
            'tnews/classifier/-/seed0',
        ]
    )
    for record in saved['cells'].values():
        assert 0 <= record['valid'] <= 1 and 0 <= record['test'] <= 1 and record['wall_seconds'] > 0
    assert saved['cells']['tnews/few-shot/N1/seed0']['labeled'] == 9
    assert saved['data']['sentiment'] == dict(
        labeled=1, unlabeled=59, valid=24, test=24, source=os.path.relpath(data_dirs / 'sentiment', REPO)
    )
    assert saved['settings']['checkpoint_dir'] == os.path.relpath(checkpoint_dir, REPO)  # no machine paths
    table = (tmp_path / 'accuracy.md').read_text(encoding='utf-8')
    assert '| pattern | zero-shot | few-shot |' in table and '| P1 `____满意。{text}` |' in table
    assert '| N1 ' in table and 'classifier ([CLS] + dense' in table
    try:
        import matplotlib  # noqa: F401

        assert (tmp_path / 'accuracy.png').read_bytes()[:4] == b'\x89PNG'
    except ImportError:
        assert 'chart skipped' in result.stdout

    again = run('accuracy.py', *args)  # every cell is done: nothing is trained again
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count('done, skipped') == 6
    assert json.loads((tmp_path / 'accuracy.json').read_text(encoding='utf-8'))['cells'] == saved['cells']

    # the tables of more modes than were run: missing cells say so, nothing is trained
    tables = run('accuracy.py', *args[:7], 'semi-supervised', *args[7:], '--table-only')
    assert tables.returncode == 0, tables.stderr[-3000:]
    assert '[1/' not in tables.stdout
    table = (tmp_path / 'accuracy.md').read_text(encoding='utf-8')
    assert '| pattern | zero-shot | few-shot | semi-supervised |' in table
    assert table.count('not run') == 2  # sentiment P1, tnews N1
    saved_again = json.loads((tmp_path / 'accuracy.json').read_text(encoding='utf-8'))
    assert saved_again['cells'] == saved['cells'] and len(saved_again['commands']) == 1

    other = run('accuracy.py', *args, '--steps', 6)  # other settings: refused, nothing overwritten
    assert other.returncode != 0 and 'other settings' in other.stderr and 'steps 4 → 6' in other.stderr

    # the same folder with other weights (pretrained on in place): refused too
    prefix = str(checkpoint_dir / 'bert_model.ckpt')
    reader = tf.train.load_checkpoint(prefix)
    weights = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    weights['cls/predictions/output_bias'] = weights['cls/predictions/output_bias'] + 0.5
    compat.write_checkpoint(prefix, weights)
    retrained = run('accuracy.py', *args)
    assert retrained.returncode != 0 and 'checkpoint_index_sha256' in retrained.stderr, retrained.stderr[-3000:]
    assert json.loads((tmp_path / 'accuracy.json').read_text(encoding='utf-8'))['cells'] == saved['cells']


IFLYTEK_NAMES = ['体育', '新闻', '文化', '财经股票', '汽车', '科技军事', '旅游', '农业']


def write_iflytek(data):
    """IFLYTEK-like FewCLUE files: label names of 2-4 characters under the key label_des."""
    rng = random.Random(2)
    data.mkdir()
    for name, n in (('train_few_all.json', 16), ('dev_few_all.json', 12), ('test_public.json', 12)):
        rows = [
            json.dumps(
                {'label': i % 8, 'label_des': IFLYTEK_NAMES[i % 8], 'sentence': text(rng), 'id': i}, ensure_ascii=False
            )
            + '\n'
            for i in range(n)
        ]
        (data / name).write_text(''.join(rows), encoding='utf-8')
    return data


def test_many_labels_scores_mixed_and_equal_length_names(sharp_checkpoint, tmp_path):
    """Each verbalizer runs, the mixed-length ones with one slot length per name length."""
    names = IFLYTEK_NAMES
    assert len({w[0] for w in many_labels.two_character_words(names + ['体育新闻']).values()}) == len(names) + 1
    data = write_iflytek(tmp_path / 'iflytek')
    result = run(
        'many_labels.py',
        '--checkpoint-dir',
        sharp_checkpoint,
        '--data-dir',
        data,
        '--pattern',
        '这是____的。{text}',
        '--maxlen',
        40,
        '--few-shot',
        '--steps',
        2,
        '--eval-every',
        1,
        '--out',
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = json.loads((tmp_path / 'many_labels.json').read_text(encoding='utf-8'))
    assert saved['labels'] == 8 and saved['examples'] == {'valid': 12, 'test': 12, 'train': 16}
    runs = saved['runs']
    for title in ('names, log-probability', 'two characters each'):  # fine-tuned at the given budget
        few_shot = runs[title]['few_shot']
        assert [r['step'] for r in few_shot['evaluations']] == [1, 2] and 0 <= few_shot['test'] <= 1
    assert 'few_shot' not in runs['names, mean per token']
    assert runs['names, log-probability']['slot_lengths'] == [2, 4] == runs['names, mean per token']['slot_lengths']
    assert runs['two characters each']['slot_lengths'] == [2]
    for run_ in runs.values():
        assert 0 <= run_['valid'] <= 1 and run_['test_examples_per_second'] > 0


def test_few_shot_selection_reads_iflytek_with_two_character_words(tmp_path, capsys):
    data = write_iflytek(tmp_path / 'iflytek')
    args = few_shot_selection.parse_args(['--tasks', 'iflytek', '--iflytek-dir', str(data)])
    task = few_shot_selection.load_task('iflytek', args)
    assert (len(task.labeled), len(task.valid), len(task.test)) == (16, 12, 12)
    assert sorted(task.verbalizer.labels) == sorted(IFLYTEK_NAMES)
    assert {len(words[0]) for words in task.verbalizer.label_words.values()} == {2}
    assert task.templates == {'I1': many_labels.PATTERN} and task.maxlen == 128
    assert few_shot_selection.max_steps(args, 'iflytek') == 1600 and few_shot_selection.max_steps(args, 'tnews') == 600
    shorter = few_shot_selection.parse_args(['--tasks', 'iflytek', '--max-steps', '300'])
    assert few_shot_selection.max_steps(shorter, 'iflytek') == 300
    with pytest.raises(SystemExit):
        few_shot_selection.parse_args(['--max-steps', '200'])  # below the fixed budget of 250 steps
    assert '--fixed-steps must be' in capsys.readouterr().err


def test_a_fold_curve_cut_where_a_smaller_patience_stops():
    curve = {0: 0.5, 50: 0.6, 100: 0.6, 150: 0.55, 200: 0.7, 250: 0.65, 300: 0.6, 350: 0.6}
    assert few_shot_selection.stopped_early(curve, 2) == {0: 0.5, 50: 0.6, 100: 0.6, 150: 0.55}  # no tie improves
    assert max(few_shot_selection.stopped_early(curve, 3)) == 350
    assert few_shot_selection.stopped_early(curve, 5) == curve  # ended before its patience ran out
    assert few_shot_selection.stopped_early({0: 0.5, 50: 0.4, 100: 0.5}, 2) == {0: 0.5, 50: 0.4, 100: 0.5}


def test_a_unit_is_read_again_for_a_patience_it_lacks():
    assert few_shot_selection.FOLD_PATIENCES == (5, 4, 3)
    assert few_shot_selection.lacks_fold_patience({})
    assert not few_shot_selection.lacks_fold_patience({'fold_patience': None})  # its folds are gone
    assert few_shot_selection.lacks_fold_patience({'fold_patience': {'5': {}, '4': {}}})
    assert not few_shot_selection.lacks_fold_patience({'fold_patience': {'5': {}, '4': {}, '3': {}}})


def test_the_summary_counts_fold_steps_with_and_without_the_cap():
    units = {
        'sentiment/seed%d' % seed: {
            'test': dict.fromkeys(few_shot_selection.RULES, 0.7),
            'estimate_error': 0.01,
            'seconds': {'cross_validation': 10.0},
            'fold_patience': {'5': {'test': 0.7, 'fold_steps': stops}},
        }
        for seed, stops in enumerate(([300, 450, 200, 450], [400, 350, 500, 300]))
    }
    row = few_shot_selection.summary(units)['sentiment']['fold_patience']['5']
    assert row['fold_steps'] == (1400 + 1550) / 2
    assert row['fold_steps_capped'] == (300 + 300 + 200 + 200 + 400 + 350 + 350 + 300) / 2
