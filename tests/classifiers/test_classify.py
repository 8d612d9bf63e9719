"""The whole classification on the shipped models: the cases the issue names."""

from __future__ import annotations

import pytest

from classifiers.classify import Classifier, Doc
from pipeline.messages import Post

# The whole classification needs the shipped sentiment model (issue 3, in progress);
# these run as soon as `classifiers/models/sentiment.py` and the artifacts exist.
pytest.importorskip("classifiers.models.sentiment")


def one(classifier: Classifier, text: str, title: str | None = None):  # type: ignore[no-untyped-def]
    return classifier.classify([Doc("t", title, text, "test")])[0]


def test_school_enrolment_goes_to_education(classifier: Classifier) -> None:
    r = one(
        classifier,
        "孩子明年上小学，想问一下我们小区对口哪所学校，入学登记什么时候开始？",
        "咨询小学入学招生",
    )
    assert r.departments[0].id == "education"
    assert r.departments[0].role == "lead"
    assert r.policy_relevant
    assert r.topic == "教育"


def test_dust_and_noise_complaint_goes_to_environment(classifier: Classifier) -> None:
    r = one(classifier, "小区东侧工地天天夜里施工，扬尘很大，噪声吵得老人孩子睡不好，没人管。")
    assert r.departments[0].id == "environment"
    assert r.sentiment == "negative"
    assert r.severity in ("low", "medium", "high")
    assert r.explanation["departments"]


def test_street_vending_goes_to_urban_enforcement(classifier: Classifier) -> None:
    r = one(classifier, "地铁站口占道经营的小摊越来越多，水果摊全摆在盲道上，行人只能走机动车道。")
    assert r.departments[0].id == "urban-enforcement"


def test_deadly_fire_is_critical_incident(classifier: Classifier) -> None:
    r = one(
        classifier,
        "11月22日凌晨，区内一老旧小区居民楼发生火灾，造成2人死亡、3人受伤。",
        "某小区发生火灾 致2人死亡",
    )
    assert r.severity == "critical"
    assert "突发事件" in r.sensitivity
    assert r.sentiment == "negative"


def test_entertainment_is_not_policy_relevant(classifier: Classifier) -> None:
    r = one(classifier, "今晚的综艺太好笑了，明星嘉宾全程高能，强烈推荐大家去看！")
    assert not r.policy_relevant
    assert r.severity == "none"


def test_output_is_aligned_and_versioned(classifier: Classifier) -> None:
    docs = [Doc(str(i), None, t, "") for i, t in enumerate(["扬尘", "入学", "Hello world", "😀"])]
    results = classifier.classify(docs)
    assert [r.post_id for r in results] == ["0", "1", "2", "3"]
    assert {r.model_version for r in results} == {classifier.model_version}
    for r in results:
        assert 0 <= r.relevance_score <= 1 and 0 <= r.sentiment_score <= 1
        assert r.departments and all(0 <= d.score <= 1 for d in r.departments)


def test_results_pass_the_schema(classifier: Classifier) -> None:
    """The classifier builds its results without pydantic's validation (for speed):
    every field must still be what validation would accept and keep."""
    from pipeline.messages import Classification

    texts = [
        "工地夜里施工，扬尘很大，噪声吵得睡不好！！",
        "某小区发生火灾 致2人死亡，现场浓烟滚滚",
        "咨询小学入学招生报名时间",
        "娱乐圈明星八卦",
        "",
        "Hello world",
        "😀" * 50,
        "占道经营严重，城管不管" * 200,
    ]
    docs = [Doc(str(i), "标题" if i % 2 else None, t, "weibo") for i, t in enumerate(texts)]
    for result in classifier.classify(docs):
        dumped = result.model_dump()
        assert Classification.model_validate(dumped).model_dump() == dumped
        assert all(v for v in dumped["explanation"].values())  # no empty explanation lists
        # Built as pydantic's model_construct builds it: same state, same JSON.
        rebuilt = Classification.model_construct(**dict(result))
        assert result == rebuilt and result.model_fields_set == rebuilt.model_fields_set
        assert result.model_dump_json() == rebuilt.model_dump_json()
        assert result.model_copy(update={"topic": "x"}).topic == "x"


def test_results_are_built_with_every_field() -> None:
    from classifiers.classify import _constructor
    from pipeline.messages import DepartmentScore

    new = _constructor(DepartmentScore)
    assert new(id="education", score=0.5, role="co") == DepartmentScore(
        id="education", score=0.5, role="co"
    )
    with pytest.raises(TypeError, match="every field"):
        new(id="education", score=0.5)


def test_cleaned_posts_classify_as_raw_ones(classifier: Classifier) -> None:
    """The stage passes posts `pipeline.textprep` already cleaned and masked and skips
    cleaning them again: the result must be what cleaning raw text gives."""
    from pipeline.textprep import prepare_post
    from tests.classifiers.test_text import CARD_16, ID_X

    raw = [
        ("咨询小学入学招生", "<p>孩子明年上小学，想问入学登记什么时候开始？</p>电话13812345678"),
        (None, "工地夜里施工，扬尘很大，噪声吵得睡不好！！＠张三 https://t.cn/abc 😀"),
        ("某小区发生火灾 致2人死亡", "某小区发生火灾 致2人死亡\n凌晨起火，造成2人死亡。"),
        ("標題：佔道經營", f"聯繫 a@b.com 身份证{ID_X} 卡号{CARD_16} 京A·12345 (010)12345678"),
        ("", "本帖最后由 a 于 2018-5-26 11:27 编辑 占道经营严重"),
    ]
    posts = [
        prepare_post(Post(source="t", url=f"https://bbs.example.cn/{i}", title=t, text=x))
        for i, (t, x) in enumerate(raw)
    ]
    raw_docs = [Doc(str(i), t, x, "t") for i, (t, x) in enumerate(raw)]
    clean_docs = [Doc(str(i), p.title, p.text, "t") for i, p in enumerate(posts)]

    def comparable(results: list) -> list[dict]:  # type: ignore[type-arg]
        return [r.model_dump(exclude={"classified_at"}) for r in results]

    assert comparable(classifier.classify(clean_docs, cleaned=True)) == comparable(
        classifier.classify(raw_docs)
    )
