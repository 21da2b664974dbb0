"""Chinese (and some English) complaint texts: many phrasings per category, typos and chatter."""

from __future__ import annotations

import random

__all__ = ["CATEGORIES", "REDLINE_PHRASES", "complaint_text"]

_OPENERS = ("", "你好，", "您好，", "喂，", "客服你好，", "麻烦看一下，", "我想反映一下，", "又是我，", "说实话，", "hello，")
_CLOSERS = ("", "。", "！", "，请尽快处理。", "，谢谢。", "，麻烦给个说法。", "，急！", "，已经打了好几次电话了。", "??", "，等回复。")
_CHATTER = ("", "", "", "今天下雨，", "我在上班，", "家里老人在用，", "孩子要上网课，", "刚搬家，", "周末在家，")

CATEGORIES: dict[str, tuple[str, ...]] = {
    "网络故障": (
        "家里{product}{dur}断网了，{symptom}",
        "{product}老是掉线，{symptom}",
        "网速特别慢，测速只有{speed}兆，{symptom}",
        "wifi连不上，光猫{light}灯一直闪",
        "晚上八点以后网络卡得不行，{symptom}",
        "宽带没信号{dur}了，报修也没人来",
        "network is down since {dur2}, {symptom_en}",
    ),
    "账单争议": (
        "这个月账单多扣了{money}块，套餐明明是{fee}元",
        "莫名其妙多扣费{money}元，我没开通过{item}",
        "话费被乱扣，{item}是什么我根本不知道",
        "首月账单{fee2}元，跟营业员说的不一样",
        "帐单有问题，多收了{money}块钱",
        "bill is wrong, charged {money} yuan extra for {item}",
    ),
    "装机延误": (
        "{product}装机约好了{day}上门，到现在也没人来",
        "报装{dur}了还没装好，师傅电话打不通",
        "预约的安装师傅放鸽子，{product}一直装不上",
        "新办的{product}等了{dur}还没开通",
        "装机一拖再拖，说好的{day}，又改期了",
    ),
    "服务态度": (
        "客服态度很差，{rude}",
        "营业厅工作人员{rude}",
        "打10000号等了{minutes}分钟没人接",
        "装维师傅{rude}，很不专业",
    ),
    "5G信号": (
        "5G信号很差，{place}基本没信号",
        "手机在{place}只有一格信号，电话打不出去",
        "升级了5G套餐，网速反而更慢了",
        "signal is terrible at {place_en}",
    ),
    "IPTV": (
        "IPTV看电视一直卡顿，{symptom}",
        "电视机顶盒开机黑屏，{symptom}",
        "IPTV回看功能用不了",
    ),
    "销户携转": (
        "我要销户，办理了{dur}还没销掉",
        "携号转网被拒，理由说不清楚",
        "想改套餐，营业厅说要违约金{money}元",
    ),
    "app登录": (
        "APP登录不了，一直提示验证码错误",
        "掌上营业厅登陆不上，显示系统繁忙",
        "app can't login, keeps saying error {code}",
    ),
}

REDLINE_PHRASES = (
    "再不解决我就去工信部投诉",
    "我要打315曝光你们",
    "已经准备起诉了",
    "我会找媒体曝光这件事",
    "我投诉到底，绝不罢休",
    "我已经向消协反映了",
    "打12315也要讨个说法",
)

_FILL = {
    "dur": ("两天", "三天", "一个星期", "好几天", "一整天", "半个月", "3天"),
    "dur2": ("yesterday", "monday", "3 days"),
    "symptom": ("重启光猫也没用", "影响工作", "打了好几次电话都没修好", "孩子没法上网课", "说是线路问题", "一直没人处理", ""),
    "symptom_en": ("please fix asap", "nobody came", "restarted router, no use"),
    "speed": ("2", "5", "10", "0.5"),
    "light": ("红", "LOS", "PON"),
    "money": ("20", "30", "45", "90", "100", "168", "二十", "九十"),
    "fee": ("99", "129", "169", "199"),
    "fee2": ("219", "258", "300", "187"),
    "item": ("视频会员", "彩铃", "增值业务", "流量包", "国际漫游", "来电显示"),
    "day": ("周一", "昨天", "前天", "上周五", "今天上午"),
    "rude": ("态度恶劣", "直接挂电话", "爱理不理", "推来推去", "说话很冲"),
    "minutes": ("20", "30", "40", "半小时"),
    "place": ("地下车库", "小区里", "办公室", "电梯里", "家里卧室"),
    "place_en": ("home", "office", "the station"),
    "code": ("500", "1002", "E41"),
}
_TYPOS = {"网络": "网洛", "信号": "信亏", "账单": "帐单", "宽带": "宽代", "登录": "登陆", "师傅": "师父"}


def _fill(rng: random.Random, template: str, product: str) -> str:
    out = template.replace("{product}", product)
    for key, choices in _FILL.items():
        token = "{" + key + "}"
        while token in out:
            out = out.replace(token, rng.choice(choices), 1)
    return out


def complaint_text(rng: random.Random, category: str, product: str, redline: bool = False) -> str:
    """One complaint text of ``category``; ``redline`` adds a red-line phrase."""
    body = _fill(rng, rng.choice(CATEGORIES[category]), product)
    if rng.random() < 0.08:
        for right, wrong in _TYPOS.items():
            if right in body:
                body = body.replace(right, wrong, 1)
                break
    text = rng.choice(_OPENERS) + rng.choice(_CHATTER) + body + rng.choice(_CLOSERS)
    if redline:
        text += rng.choice(("", "，")) + rng.choice(REDLINE_PHRASES) + rng.choice(("！", "。", "!!"))
    return text
