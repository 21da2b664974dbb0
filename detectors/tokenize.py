"""Complaint text → the terms the hot-word detector counts: words and adjacent-word phrases.

Chinese goes through jieba (the Rust port, rjieba, per tokenizer instance so a
domain dictionary never leaks between uses); English words are kept as words.
Text is NFKC-normalised first (full-width ``５Ｇ`` → ``5g``, ``ＡＰＰ`` → ``app``)
and lower-cased. Punctuation, stop words and single characters are dropped
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

__all__ = ["DOMAIN_WORDS", "STOP_WORDS", "Tokenizer"]

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

#: Words too common to carry news (function words, pronouns, politeness, filler).
_STOP_TEXT = """
的 了 是 我 你 他 她 它 们 我们 你们 他们 这 那 这个 那个 这些 那些 一个 什么 怎么 为什么 还是 就是 也 都 又 还 在 有 没有
没 不 很 太 吧 吗 呢 啊 呀 哦 嗯 和 与 及 或 而 但 但是 可是 因为 所以 如果 就 才 让 把 被 给 对 从 到 向 于 为 着 过 之 以
已经 一直 一下 每个 每次 现在 今天 昨天 明天 时候 问题 情况 请 谢谢 麻烦 您好 你好 好 说 要 会 能 可以 应该 需要 一定 非常 真的 根本
the a an and or but to of in on at for with is are was were be been it this that i you we they my your please thanks
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_TEXT.split())

_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)


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

    @staticmethod
    def _normalise(text: str) -> str:
        return unicodedata.normalize("NFKC", text).lower()

    def words_of(self, text: str) -> list[str]:
        """The kept words of ``text``, in order."""
        out = []
        for token in self.jieba.cut(self._normalise(text)):
            token = token.strip()
            if not token or _PUNCT.match(token) or token in self.stop:
                continue
            if (len(token) < 2 or token.isdigit()) and token not in self.words:
                continue  # single characters and amounts ("20") carry no topic
            out.append(token)
        return out

    def terms(self, text: str) -> list[str]:
        """Distinct terms of ``text`` (words, then phrases), at most ``max_terms``."""
        words = self.words_of(text)
        terms = list(dict.fromkeys(words))
        if self.phrases:
            terms.extend(dict.fromkeys(f"{a} {b}" for a, b in itertools.pairwise(words) if a != b))
        return list(dict.fromkeys(terms))[: self.max_terms]
