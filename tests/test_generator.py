"""pet_keras.batching: the masked-token batches PET trains on."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import numpy as np
import pytest
import tensorflow as tf

from pet_keras import cli, runner
from pet_keras.config import RunConfig
from pet_keras.batching import PetDataGenerator, positions_batch
from pet_keras.pattern import PVP
from pet_keras.runstate import training_data
from tiny import ex

POOL = '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬东西南北红黄蓝白黑'


@pytest.fixture(scope='module')
def pvp(tok):
    return PVP('____满意。{text}', {'positive': '很', 'negative': '不'}, tok, 40)


def random_texts(n, seed=0, low=5, high=30):
    rng = np.random.default_rng(seed)
    return [''.join(rng.choice(list(POOL), rng.integers(low, high))) for _ in range(n)]


def labeled_examples(n, seed=0):
    return [
        ex(t, 'positive' if i % 3 else 'negative', 'train:%d' % (i + 1)) for i, t in enumerate(random_texts(n, seed))
    ]


def unlabeled_examples(n, seed=1):
    return [ex(t, None, 'unlabeled:%d' % (i + 1)) for i, t in enumerate(random_texts(n, seed))]


def full_targets(ids, positions, targets):
    """(batch, length) targets from the gathered form; checks the padding."""
    T = np.zeros(ids.shape, dtype='int64')
    for i in range(len(ids)):
        valid = targets[i] > 0
        n = int(valid.sum())
        # predicted positions come first (a labeled row's slot before the others), distinct; the padding
        # has target 0
        assert valid[:n].all() and not valid[n:].any()
        assert len(set(positions[i, :n].tolist())) == n
        assert (positions[i, n:] == 0).all()
        T[i, positions[i, :n]] = targets[i, :n]
    return T


def batches(gen, random=False):
    for x, y in gen.__iter__(random):
        assert y is None
        assert len(x) == 5
        yield [np.asarray(a) for a in x]


def test_batch_structure(pvp):
    labeled = labeled_examples(10)
    gen = PetDataGenerator(pvp, labeled, batch_size=4, seed=0)
    assert len(gen) == 3
    sizes = []
    for ids, segs, positions, targets, words in batches(gen):
        assert ids.ndim == segs.ndim == positions.ndim == targets.ndim == 2
        assert ids.shape == segs.shape
        assert positions.shape == targets.shape and positions.shape[0] == ids.shape[0]
        assert positions.shape[1] % 16 == 0
        assert (segs == 0).all()
        sizes.append(len(ids))
    assert sizes == [4, 4, 2]


def test_slot_is_mask_with_the_label_word_as_target(pvp, tok):
    labeled = labeled_examples(24)
    encoded = [pvp.encode(e) for e in labeled]
    word_id = {'positive': tok.token_to_id('很'), 'negative': tok.token_to_id('不')}
    specials = [tok._token_start_id, tok._token_end_id, tok._token_pad_id]
    gen = PetDataGenerator(pvp, labeled, batch_size=8, mask_rate=0.15, seed=0)
    for _ in range(20):  # many draws of the random masking
        row = 0
        for ids, segs, positions, targets, words in batches(gen):
            T = full_targets(ids, positions, targets)
            for i in range(len(ids)):
                e, orig = encoded[row], np.array(encoded[row].token_ids)
                L = len(orig)
                slot = e.slots[0]
                assert slot == 1 and ids[i, slot] == tok._token_mask_id
                assert T[i, slot] == word_id[labeled[row].label]
                # [CLS], [SEP] and padding keep their ids and are never targets
                assert ids[i, 0] == tok._token_start_id and ids[i, L - 1] == tok._token_end_id
                assert (ids[i, L:] == 0).all() and (T[i, L:] == 0).all()
                predicted = np.flatnonzero(T[i])
                assert not np.isin(orig[predicted[predicted != slot]], specials).any()
                assert T[i, 0] == 0 and T[i, L - 1] == 0
                # other targets are the original tokens; unmasked tokens are unchanged
                others = predicted[predicted != slot]
                np.testing.assert_array_equal(T[i, others], orig[others])
                untouched = np.setdiff1d(np.arange(L), predicted)
                np.testing.assert_array_equal(ids[i, untouched], orig[untouched])
                row += 1
        assert row == len(labeled)


def test_slot_never_replaced_even_at_full_mask_rate(pvp, tok):
    labeled = labeled_examples(16)
    gen = PetDataGenerator(pvp, labeled, batch_size=16, mask_rate=1.0, seed=3)
    word_ids = {tok.token_to_id('很'), tok.token_to_id('不')}
    for _ in range(30):
        ids, segs, positions, targets, words = next(batches(gen))
        T = full_targets(ids, positions, targets)
        assert (ids[:, 1] == tok._token_mask_id).all()
        assert set(T[:, 1].tolist()) <= word_ids
        # every ordinary token is a target at rate 1
        for i, e in enumerate(labeled):
            orig = np.array(pvp.encode(e).token_ids)
            ordinary = np.flatnonzero(~np.isin(orig, [tok._token_start_id, tok._token_end_id, tok._token_mask_id]))
            assert (T[i, ordinary] == orig[ordinary]).all()
        # many targets: the gathered width is still a multiple of 16
        assert positions.shape[1] % 16 == 0 and positions.shape[1] >= (targets > 0).sum(1).max()


def test_random_mask_rate_and_80_10_10(pvp, tok):
    labeled = labeled_examples(32, seed=5)
    encoded = [pvp.encode(e) for e in labeled]
    gen = PetDataGenerator(pvp, labeled, batch_size=32, mask_rate=0.15, seed=11)
    chosen = ordinary = as_mask = unchanged = 0
    literal = set(pvp._literals[1])  # '满意。' tokens are ordinary tokens too
    assert literal
    for _ in range(150):
        ids, segs, positions, targets, words = next(batches(gen))
        T = full_targets(ids, positions, targets)
        for i, e in enumerate(encoded):
            orig = np.array(e.token_ids)
            idx = np.arange(2, len(orig) - 1)  # neither [CLS], the slot nor [SEP]
            ordinary += len(idx)
            hit = idx[T[i, idx] > 0]
            chosen += len(hit)
            as_mask += int((ids[i, hit] == tok._token_mask_id).sum())
            unchanged += int((ids[i, hit] == orig[hit]).sum())
    assert ordinary > 50000
    assert abs(chosen / ordinary - 0.15) < 0.01
    assert abs(as_mask / chosen - 0.8) < 0.02
    # 10% unchanged, plus random replacements that happen to draw the same token
    assert 0.08 < unchanged / chosen < 0.13


def test_unlabeled_get_no_pattern_only_random_masking(pvp, tok):
    unlabeled = unlabeled_examples(12)
    gen = PetDataGenerator(pvp, unlabeled=unlabeled, batch_size=12, mask_rate=0.15, seed=0)
    saw_target = False
    for _ in range(10):
        ids, segs, positions, targets, words = next(batches(gen))
        T = full_targets(ids, positions, targets)
        for i, e in enumerate(unlabeled):
            plain = np.array(tok.encode(e.fields['text'])[0])
            L = len(plain)
            assert L == len(e.fields['text']) + 2
            assert (ids[i, L:] == 0).all() and (T[i, L:] == 0).all()
            predicted = np.flatnonzero(T[i])
            np.testing.assert_array_equal(T[i, predicted], plain[predicted])
            untouched = np.setdiff1d(np.arange(L), predicted)
            np.testing.assert_array_equal(ids[i, untouched], plain[untouched])
            assert T[i, 0] == 0 and T[i, L - 1] == 0
            # no pattern: [MASK] only where a token is predicted
            assert not (ids[i, untouched] == tok._token_mask_id).any()
            saw_target |= len(predicted) > 0
    assert saw_target


def test_mask_rate_zero_only_slot_targets(pvp, tok):
    labeled, unlabeled = labeled_examples(6), unlabeled_examples(4)
    gen = PetDataGenerator(pvp, labeled, unlabeled, batch_size=10, mask_rate=0, seed=0)
    ids, segs, positions, targets, words = next(batches(gen))
    T = full_targets(ids, positions, targets)
    for i, e in enumerate(labeled):
        assert np.flatnonzero(T[i]).tolist() == [1]
        assert ids[i, : len(pvp.encode(e).token_ids)].tolist() == pvp.encode(e).token_ids
    for i, e in enumerate(unlabeled, len(labeled)):
        assert not T[i].any()
        assert ids[i, : len(e.fields['text']) + 2].tolist() == tok.encode(e.fields['text'])[0]
    assert positions.shape == (10, 16)


def test_mixed_batch_rows_keep_their_kind(pvp, tok):
    labeled, unlabeled = labeled_examples(5), unlabeled_examples(5)
    gen = PetDataGenerator(pvp, labeled, unlabeled, batch_size=10, mask_rate=0.15, seed=2)
    ids, segs, positions, targets, words = next(batches(gen))
    T = full_targets(ids, positions, targets)
    assert (ids[:5, 1] == tok._token_mask_id).all() and (T[:5, 1] > 0).all()
    for i, e in enumerate(unlabeled, 5):
        assert T[i, 1] == 0 or T[i, 1] == tok.token_to_id(e.fields['text'][0])
    # each row's gold word (−1: none); a labeled row's slot is its first predicted position
    assert words.shape == (10,) and (words[5:] == -1).all()
    assert [pvp.labels[pvp.word_label[w]] for w in words[:5]] == [e.label for e in labeled]
    assert (positions[:5, 0] == 1).all() and (targets[:5, 0] == [pvp.word_ids[w][0] for w in words[:5]]).all()


def test_slot_positions_come_first_in_a_suffix_pattern(tok):
    pvp = PVP('{text}。____满意', {'positive': ['很'], 'negative': ['不']}, tok, 48)
    labeled = labeled_examples(8)
    gen = PetDataGenerator(pvp, labeled, batch_size=8, mask_rate=0.5, seed=4)
    ids, segs, positions, targets, words = next(batches(gen))
    for i, e in enumerate(labeled):
        slot = pvp.encode(e).slots[0]
        assert positions[i, 0] == slot and targets[i, 0] == pvp.word_ids[words[i]][0]
        assert pvp.labels[pvp.word_label[words[i]]] == e.label
        assert (targets[i, 1:] > 0).sum() > 0 and slot not in positions[i, 1:][targets[i, 1:] > 0]


@pytest.mark.parametrize('share, labeled_per_epoch', [(None, 4), (0.5, 40), (0.25, 12)])
def test_labeled_share_repeats_the_labeled_examples_in_every_epoch(pvp, tok, share, labeled_per_epoch):
    # 4 labeled among 40 unlabeled: their natural share is 1/11; 0.5 repeats each 10 times, 0.25 three times
    labeled, unlabeled = labeled_examples(4), unlabeled_examples(40)
    gen = PetDataGenerator(pvp, labeled, unlabeled, batch_size=8, mask_rate=0, seed=0, labeled_share=share)
    for random in (False, True):
        rows = [full_targets(ids, positions, targets) for ids, _, positions, targets, _ in batches(gen, random)]
        slot_targets = np.concatenate([T[:, 1] for T in rows])
        assert len(slot_targets) == 40 + labeled_per_epoch
        assert int((slot_targets > 0).sum()) == labeled_per_epoch
    assert len(gen) == -(-(40 + labeled_per_epoch) // 8)
    # the share fixes the batches, so a run resumed with another one is refused (runstate.changes)
    assert training_data(gen).get('labeled_share') == share


def test_the_scripts_flags_make_the_generator(pvp):
    flags = ['--labeled-share', '0.5', '--batch-size', '8', '--mask-rate', '0', '--seed', '3']
    args = cli.script_parser('test', {'P1': '____满意。{text}'}, 'P1', 'data').parse_args(flags)
    config = RunConfig.from_flags(args)
    gen = runner.training_generator(config, pvp, labeled_examples(4), unlabeled_examples(40))
    assert (gen.labeled_share, gen.batch_size, gen.mask_rate, len(gen.epoch)) == (0.5, 8, 0, 80)
    assert runner.training_generator(config, pvp, [], []) is None  # zero-shot


def test_labeled_share_needs_both_kinds_and_a_share_in_the_open_interval(pvp):
    # without unlabeled examples there is nothing to share the stream with: every example once
    gen = PetDataGenerator(pvp, labeled_examples(4), batch_size=2, labeled_share=0.5)
    assert gen.labeled_share is None and len(gen) == 2
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match='labeled_share must be in'):
            PetDataGenerator(pvp, labeled_examples(4), unlabeled_examples(4), labeled_share=bad)


def test_same_seed_same_batches_different_seed_different(pvp):
    labeled = labeled_examples(16)

    def run(seed):
        gen = PetDataGenerator(pvp, labeled, batch_size=8, seed=seed)
        return [a.tolist() for _ in range(3) for x in batches(gen) for a in x]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_several_words_per_label(tok):
    pvp = PVP('____满意。{text}', {'positive': ['很', '好'], 'negative': ['不', '低', '冷']}, tok, 40)
    labeled = labeled_examples(30)
    gen = PetDataGenerator(pvp, labeled, batch_size=30, mask_rate=0, seed=0)
    allowed = {'positive': {tok.token_to_id(w) for w in '很好'}, 'negative': {tok.token_to_id(w) for w in '不低冷'}}
    counts = {}
    for _ in range(40):
        ids, segs, positions, targets, words = next(batches(gen))
        T = full_targets(ids, positions, targets)
        for i, e in enumerate(labeled):
            assert T[i, 1] in allowed[e.label]
            counts[T[i, 1]] = counts.get(T[i, 1], 0) + 1
    # every word of a label is drawn, about equally often
    assert set(counts) == allowed['positive'] | allowed['negative']
    pos_total = sum(counts[w] for w in allowed['positive'])
    for w in allowed['positive']:
        assert abs(counts[w] / pos_total - 0.5) < 0.1
    neg_total = sum(counts[w] for w in allowed['negative'])
    for w in allowed['negative']:
        assert abs(counts[w] / neg_total - 1 / 3) < 0.1


def test_multi_token_slot_targets(tok):
    words = {'体育': '体育', '财经': '财经', '故事': '故事'}
    pvp = PVP('下面报导一则____新闻。{text}', words, tok, 40)
    labeled = [ex('春夏秋冬', label, 'n:%d' % i) for i, label in enumerate(['体育', '财经', '故事', '体育'])]
    gen = PetDataGenerator(pvp, labeled, batch_size=4, mask_rate=0.15, seed=0)
    for _ in range(10):
        ids, segs, positions, targets, words = next(batches(gen))
        T = full_targets(ids, positions, targets)
        for i, e in enumerate(labeled):
            assert (ids[i, [7, 8]] == tok._token_mask_id).all()
            assert tok.ids_to_tokens(T[i, [7, 8]].tolist()) == list(e.label)
            assert positions[i, :2].tolist() == [7, 8] and pvp.labels[words[i]] == e.label
            others = positions[i, 2:][targets[i, 2:] > 0]
            assert (np.diff(others) > 0).all()  # after the slot, in order


def test_positions_batch_padding_and_width():
    sources = np.arange(2 * 40).reshape(2, 40)
    targets = np.zeros((2, 40), dtype='int64')
    targets[0, [3, 5, 9]] = [7, 8, 9]
    targets[1, np.arange(1, 39)] = 5  # 38 targets: width 48
    src, positions, gathered = positions_batch(sources, targets)
    assert src is sources
    assert positions.shape == gathered.shape == (2, 48)
    assert positions[0, :3].tolist() == [3, 5, 9] and gathered[0, :3].tolist() == [7, 8, 9]
    assert not positions[0, 3:].any() and not gathered[0, 3:].any()
    assert positions[1, :38].tolist() == list(range(1, 39)) and (gathered[1, :38] == 5).all()
    # no target at all still gives a (batch, 16) array
    _, p, g = positions_batch(sources, np.zeros_like(targets))
    assert p.shape == g.shape == (2, 16) and not g.any()


def test_no_examples_is_an_error(pvp):
    with pytest.raises(ValueError, match='no training examples'):
        PetDataGenerator(pvp, [], [])


def test_to_dataset(pvp, tok):
    labeled = labeled_examples(10)
    gen = PetDataGenerator(pvp, labeled, batch_size=4, seed=0)
    dataset = gen.to_dataset(random=True)
    elements = list(dataset.take(5))  # endless: more batches than one epoch
    assert len(elements) == 5
    for element in elements:
        assert isinstance(element, tuple) and len(element) == 1  # (x,): no y
        x = element[0]
        assert len(x) == 5
        for t in x:
            assert isinstance(t, tf.Tensor) and t.dtype == tf.int32
        assert [t.shape.rank for t in x] == [2, 2, 2, 2, 1]
        ids, segs, positions, targets, words = (t.numpy() for t in x)
        assert ids.shape == segs.shape and positions.shape == targets.shape
        assert positions.shape[1] % 16 == 0
        assert (ids[:, 1] == tok._token_mask_id).all()
        T = full_targets(ids, positions, targets)
        assert set(T[:, 1].tolist()) <= {tok.token_to_id('很'), tok.token_to_id('不')}
    assert [len(e[0][0]) for e in elements[:3]] == [4, 4, 2]


def test_forfit_gives_keras_tuples_at_every_level():
    # Keras reads a list inside (inputs, labels) as one input: bert4keras' generators yield lists
    from bert4keras.snippets import DataGenerator

    class Pairs(DataGenerator):
        def __iter__(self, random=False):
            for i in range(len(self.data)):
                yield [np.array([[i]]), np.array([[0]])], np.array([[i % 2]])

    inputs, labels = next(Pairs(list(range(3)), batch_size=1).forfit())
    assert isinstance(inputs, tuple) and len(inputs) == 2 and labels.tolist() == [[0]]


def epoch_rows(gen, random=True):
    """The batches of one epoch as lists of the examples' lengths, padded to a multiple of 8."""
    return [[int(gen.padded_lengths[i]) for i in indices] for indices in gen.batch_indices(random)]


def test_shuffled_batches_are_length_bucketed(pvp):
    from pet_keras.batching import BUCKET_BATCHES

    labeled = [ex(t, 'positive', 'train:%d' % i) for i, t in enumerate(random_texts(203, seed=3, low=1, high=38))]
    assert 2 * BUCKET_BATCHES < 203  # batches of 2: more than one chunk
    np.random.seed(0)
    bucketed = PetDataGenerator(pvp, labeled, batch_size=2, seed=0)
    plain = PetDataGenerator(pvp, labeled, batch_size=2, seed=0, bucket=False)
    epochs = [bucketed.batch_indices(random=True) for _ in range(2)]
    for batches_ in epochs:
        # every example once per epoch, full batches first, the smaller one last
        assert sorted(np.concatenate(batches_).tolist()) == list(range(203))
        assert [len(b) for b in batches_] == [2] * 101 + [1]
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in epochs[1]]  # reshuffled

    def padding(gen):
        return sum(max(rows) * len(rows) - sum(rows) for rows in epoch_rows(gen))

    assert padding(bucketed) < padding(plain) / 4
    # file order (evaluation) is not bucketed
    assert np.concatenate(bucketed.batch_indices(random=False)).tolist() == list(range(203))


def test_bucketed_batches_mix_the_copies_of_repeated_labeled_examples(pvp):
    # 40 labeled examples repeated 50 times among 2,000 texts: sorted by exact length, a batch's labeled
    # rows were ~4 copies of each example (27% distinct); by padded length they stay shuffled
    gen = PetDataGenerator(pvp, labeled_examples(40), unlabeled_examples(2000), batch_size=16, labeled_share=0.5)
    np.random.seed(0)
    labeled_rows = [[i for i in b if i < 40] for b in gen.batch_indices(True)]
    assert np.mean([len(set(rows)) / len(rows) for rows in labeled_rows if rows]) > 0.6
    assert np.mean([len(set(rows)) for rows in epoch_rows(gen)]) < 1.2  # still one padded length a batch


def test_a_set_within_one_chunk_is_not_sorted(pvp):
    # sorting it would give the same batches every epoch
    labeled = labeled_examples(40)
    gens = [PetDataGenerator(pvp, labeled, batch_size=4, seed=0, bucket=b) for b in (True, False)]
    drawn = []
    for gen in gens:
        np.random.seed(1)
        drawn.append([b.tolist() for _ in range(2) for b in gen.batch_indices(random=True)])
    assert drawn[0] == drawn[1]


def test_batch_lengths_are_the_longest_row_rounded_up_to_eight(pvp):
    gen = PetDataGenerator(pvp, labeled_examples(20), batch_size=6, seed=0)
    longest = [max(len(gen.data[i].token_ids) for i in rows) for rows in gen.batch_indices(random=False)]
    widths = [ids.shape[1] for ids, segs, positions, targets, words in batches(gen)]
    assert widths == [-(-n // 8) * 8 for n in longest]
    assert any(n % 8 for n in longest)  # some batches are padded beyond their longest row
