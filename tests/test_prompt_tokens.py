"""Learned prompt tokens ``[P]`` in a pattern (P-tuning): the n-th reads as the
vocabulary's ``[unused<n>]``, is never masked at random, and its embedding trains."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json

import numpy as np
import pytest

from pet_keras.batching import PetDataGenerator
from pet_keras.config import RunConfig
from pet_keras.pattern import PVP, Pattern
from pet_keras.train import fit_pet
from test_predict_train import seed_all
from tiny import ex, make_mlm, write_vocab

WORDS = {'positive': ['很'], 'negative': ['不']}


def test_prompt_tokens_read_as_unused_tokens_in_order(tok):
    pattern = Pattern('[P][P]____[P]{text}')
    assert pattern.parts == [('prompt', 1), ('prompt', 2), ('slot', None), ('prompt', 3), ('field', 'text')]
    pvp = PVP(pattern, WORDS, tok, 16)
    encoded = pvp.encode(ex('春夏秋冬'))
    assert tok.ids_to_tokens(encoded.token_ids) == [
        '[CLS]', '[unused1]', '[unused2]', '[MASK]', '[unused3]', '春', '夏', '秋', '冬', '[SEP]',
    ]  # fmt: skip
    assert encoded.slots == [3]
    # the prompt tokens take room from the text: 16 - [CLS] [SEP] slot - 3 prompts = 11 characters
    assert len(pvp.encode(ex('春' * 30)).token_ids) == 16


def test_too_many_prompt_tokens_for_the_vocabulary(tok):
    with pytest.raises(
        ValueError, match=r'6 learned tokens \[P\], read as \[unused1\] … \[unused6\]; .* no \[unused6\]'
    ):
        PVP('[P]' * 6 + '____{text}', WORDS, tok, 32)


def test_prompt_tokens_are_never_masked_at_random(tok):
    pvp = PVP('[P][P]____[P]{text}', WORDS, tok, 32)
    labeled = [ex('春夏秋冬东西南北', 'positive' if i % 2 else 'negative', 'x:%d' % i) for i in range(8)]
    gen = PetDataGenerator(pvp, labeled, batch_size=8, mask_rate=1.0, seed=0)
    unused = [tok.token_to_id('[unused%d]' % n) for n in (1, 2, 3)]
    for _ in range(5):
        (ids, _, positions, targets, _), _ = next(iter(gen))
        assert (ids[:, [1, 2, 4]] == unused).all()
        assert not np.isin(positions[:, 1:][targets[:, 1:] > 0], [1, 2, 4]).any()


def test_prompt_embeddings_train_and_the_pattern_is_saved(tok, tmp_path):
    seed_all(0)
    pvp = PVP('[P][P]____{text}', WORDS, tok, 24)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    table = mlm.layers['Embedding-Token'].embeddings
    unused = [tok.token_to_id('[unused%d]' % n) for n in (1, 2, 3)]
    before = table.numpy()[unused]
    train = [
        ex('春夏秋冬' if i % 2 else '东西南北', 'positive' if i % 2 else 'negative', 'x:%d' % i) for i in range(16)
    ]
    fit_pet(mlm, pvp, PetDataGenerator(pvp, train, batch_size=8, seed=0), None, steps=4, eval_every=4,
            learning_rate=1e-2, out_dir=str(tmp_path / 'run'), verbose=0)  # fmt: skip
    after = mlm.layers['Embedding-Token'].embeddings.numpy()[unused]
    assert (
        np.abs(after[:2] - before[:2]).max() > 1e-3
    )  # the pattern's two prompt tokens learned (the last weights: no validation)
    saved = json.loads((tmp_path / 'run' / 'pvp.json').read_text(encoding='utf-8'))
    assert saved['pattern'] == '[P][P]____{text}'


def test_prompt_only_changes_nothing_but_the_prompt_embeddings(tok, tmp_path):
    seed_all(1)
    pvp = PVP('[P][P]____{text}', WORDS, tok, 24)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    before = [w.numpy().copy() for w in mlm.full_model.weights]
    train = [
        ex('春夏秋冬' if i % 2 else '东西南北', 'positive' if i % 2 else 'negative', 'x:%d' % i) for i in range(16)
    ]
    results = fit_pet(mlm, pvp, PetDataGenerator(pvp, train, batch_size=8, seed=0), None, steps=4, eval_every=4,
                      learning_rate=1e-2, prompt_only=True, out_dir=str(tmp_path / 'run'), verbose=0)  # fmt: skip
    assert results['prompt_only'] is True
    prompts = [tok.token_to_id('[unused%d]' % n) for n in (1, 2)]
    for weight, old in zip(mlm.full_model.weights, before):
        new = weight.numpy()
        if weight.name == mlm.layers['Embedding-Token'].embeddings.name:
            assert (new[prompts] != old[prompts]).any(axis=1).all()  # each prompt row trained
            new, old = np.delete(new, prompts, axis=0), np.delete(old, prompts, axis=0)
        np.testing.assert_array_equal(new, old, err_msg=weight.name)


def test_prompt_only_needs_prompt_tokens(tok, tmp_path):
    pvp = PVP('____满意。{text}', WORDS, tok, 24)
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'init', dict_path=write_vocab(tmp_path / 'vocab.txt'))
    with pytest.raises(ValueError, match=r"pattern '____满意。\{text\}' has none \(add some"):
        fit_pet(mlm, pvp, None, [ex('春天', 'positive')], prompt_only=True, out_dir=str(tmp_path / 'a'), verbose=0)
    assert not (tmp_path / 'a').exists()
    with pytest.raises(ValueError, match='--mode classifier has no pattern'):
        RunConfig(mode='classifier', prompt_only=True)
