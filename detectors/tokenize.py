"""Complaint text → the terms the hot-word detector counts: words and adjacent-word phrases.

Chinese goes through jieba (the Rust port, rjieba, per tokenizer instance so a
domain dictionary never leaks between uses); English words are kept as words.
Text is NFKC-normalised first (full-width ``５Ｇ`` → ``5g``, ``ＡＰＰ`` → ``app``)
and lower-cased. Punctuation, stop words (kept lists, :data:`STOP_WORDS`) and single characters are dropped
(unless the domain dictionary names them), and each pair of adjacent kept
words also becomes a phrase (``宽带 断网``). A complaint counts each term once.

>>> Tokenizer().terms("这个月账单多扣费了，ＡＰＰ登录不了！")
['账单', '多扣费', 'app', '登录不了', '账单 多扣费', '多扣费 app', 'app 登录不了']
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DOMAIN_WORDS", "STOP_WORDS", "Tokenizer", "kept_list"]

#: Words of the trade the segmenter must keep whole (extend per deployment).
DOMAIN_WORDS: tuple[str, ...] = (
    "多扣费",
    "乱收费",
    "扣费",
    "退费",
    "话费",
    "流量费",
    "月租",
    "套餐费",
    "账单",
    "断网",
    "掉线",
    "网速慢",
    "没网",
    "没信号",
    "信号差",
    "登录不了",
    "登不上",
    "闪退",
    "验证码",
    "宽带",
    "光猫",
    "路由器",
    "机顶盒",
    "iptv",
    "固话",
    "5g套餐",
    "5g",
    "4g",
    "携号转网",
    "销户",
    "装机",
    "上门",
    "师傅",
    "工单",
    "预约",
    "改约",
    "爽约",
    "客服",
    "热线",
    "10000",
    "工信部",
    "投诉到底",
    "媒体曝光",
    "消协",
    "12315",
    "315",
    "起诉",
)

_DATA = Path(__file__).resolve().parent / "data"


def kept_list(name: str) -> frozenset[str]:
    """A kept word list of ``detectors/data`` (one word a line; see its README for where each comes from)."""
    return frozenset((_DATA / name).read_text(encoding="utf-8").split())


#: Words too common anywhere to carry news: the stopwords-iso lists for Chinese and English, as released (never
#: edited here), less the domain's own words. Words common only in complaints ("尽快 处理", "说实话") are learnt
#: per deployment instead, as the hot-word detector's background terms (``max_share``).
STOP_WORDS: frozenset[str] = (kept_list("stopwords-zh.txt") | kept_list("stopwords-en.txt")) - frozenset(DOMAIN_WORDS)

_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)
_UNSEEN = object()


class Tokenizer:
    """Turns complaint texts into countable terms (see the module docstring).

    ``dictionary`` adds words the segmenter keeps whole; ``stop_words`` replaces the
    default list; ``phrases=False`` keeps single words only.
    """

    def __init__(
        self,
        dictionary: Iterable[str] = DOMAIN_WORDS,
        stop_words: Iterable[str] = STOP_WORDS,
        phrases: bool = True,
        max_terms: int = 64,
    ) -> None:
        import rjieba

        self.jieba = rjieba.Jieba()
        self.words = {self._normalise(w) for w in dictionary}
        for word in self.words:
            self.jieba.add_word(word, 100_000, None)
        self.stop = frozenset(self._normalise(w) for w in stop_words)
        self.phrases = phrases
        self.max_terms = max_terms
        self._seen: dict[str, str | None] = {}  # token → the word it is, or None when dropped (see words_of)

    #: Distinct tokens whose verdict :meth:`words_of` remembers; past this many it starts again (memory stays bounded).
    SEEN_TOKENS = 100_000

    @staticmethod
    def _normalise(text: str) -> str:
        return unicodedata.normalize("NFKC", text).lower()

    def words_of(self, text: str) -> list[str]:
        """The kept words of ``text``, in order. A token's verdict is worked out once and remembered: a
        deployment's complaints repeat a few thousand tokens, and the checks were twice the segmenter's time."""
        seen = self._seen
        if len(seen) > self.SEEN_TOKENS:
            seen.clear()
        out = []
        for token in self.jieba.cut(self._normalise(text)):
            word = seen.get(token, _UNSEEN)
            if word is _UNSEEN:
                word = seen[token] = self._word(token)
            if word is not None:
                out.append(word)
        return out

    def _word(self, token: str) -> str | None:
        """The word ``token`` is, or None when it is punctuation, a stop word, a single character or an amount."""
        token = token.strip()
        if not token or _PUNCT.match(token) or token in self.stop:
            return None
        if (len(token) < 2 or token.isdigit()) and token not in self.words:
            return None  # single characters and amounts ("20") carry no topic
        return token

    def terms(self, text: str) -> list[str]:
        """Distinct terms of ``text`` (words, then phrases), at most ``max_terms``."""
        words = self.words_of(text)
        terms = dict.fromkeys(words)
        if self.phrases:
            for a, b in itertools.pairwise(words):
                if a != b:
                    terms[f"{a} {b}"] = None
        return list(terms)[: self.max_terms]
