"""Random token masking for masked-LM training (BERT's 80/10/10 rule)."""
import numpy as np


class RandomMasker:
    """Masks ~``rate`` of the maskable tokens of a sequence.

    A chosen token becomes [MASK] 80% of the time, a random ordinary token
    10%, and stays unchanged 10%; its target is the original id. Targets are 0
    where nothing is predicted. Special tokens ([CLS], [SEP], [PAD], [MASK],
    [UNK], [unused*]) are never chosen, nor positions the caller excludes (a
    PET slot). With ``word_ids`` (whole-word masking) the choice is per word:
    all tokens of a chosen word are masked together.
    """

    def __init__(self, tokenizer, rate=0.15, seed=None):
        self.rate = rate
        self.mask_id = tokenizer._token_mask_id
        vocab = tokenizer._token_dict
        special = {i for t, i in vocab.items() if t.startswith('[') and t.endswith(']')}
        self.special_ids = np.array(sorted(special), dtype='int64')
        self.ordinary_ids = np.array(sorted(set(vocab.values()) - special), dtype='int64')
        self.rng = np.random.default_rng(seed)

    def maskable(self, token_ids):
        return ~np.isin(token_ids, self.special_ids)

    def __call__(self, token_ids, exclude=None, word_ids=None):
        """Returns (source ids, target ids) as int arrays of the input's length."""
        token_ids = np.asarray(token_ids, dtype='int64')
        candidates = self.maskable(token_ids)
        if exclude is not None:
            candidates[np.asarray(exclude, dtype='int64')] = False
        if word_ids is None:
            chosen = candidates & (self.rng.random(len(token_ids)) < self.rate)
        else:
            word_ids = np.asarray(word_ids)
            draw = self.rng.random(word_ids.max() + 1 if len(word_ids) else 0) < self.rate
            chosen = candidates & draw[word_ids]
        action = self.rng.random(len(token_ids))
        source = token_ids.copy()
        to_mask = chosen & (action < 0.8)
        to_random = chosen & (action >= 0.8) & (action < 0.9)
        source[to_mask] = self.mask_id
        source[to_random] = self.rng.choice(self.ordinary_ids, int(to_random.sum()))
        target = np.where(chosen, token_ids, 0)
        return source, target
