import gzip
import json

import numpy as np
import pytest

from conftest import write_jsonl
from tagatlas.data import (P2CLabeler, Post, PostFileError, ReadReport, distance_km, extract_hashtags, hashtag_words,
                           history_and_queries, load_posts, mask_hashtags, nearest_cities, normalize_hashtag, read_posts,
                           split_users)

GOOD = {"id": "1", "user_id": "u1", "text": "hi #Tokyo", "hashtags": ["Tokyo"], "image": None,
        "created_at": "2015-02-01T00:00:00Z", "lat": 35.68, "lon": 139.76, "place": None}


def test_reader_reads_gzip_and_plain(tmp_path):
    plain = write_jsonl(tmp_path / "p.jsonl", [GOOD, {**GOOD, "id": "2"}])
    gz = tmp_path / "p.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert [p.id for p in read_posts(plain)] == ["1", "2"]
    assert [p.id for p in read_posts(gz)] == ["1", "2"]
    assert next(iter(read_posts(gz))).hashtags == ["tokyo"]


@pytest.mark.parametrize("bad, field", [
    ({**GOOD, "lat": 123.0}, "lat"),
    ({**GOOD, "lon": None}, "lat and lon come together"),
    ({**GOOD, "id": ""}, "id"),
    ({**GOOD, "hashtags": "tokyo"}, "hashtags"),
    ({**GOOD, "created_at": "yesterday"}, "created_at"),
    ({**GOOD, "id": True}, "id"),
])
def test_bad_line_names_file_line_and_field(tmp_path, bad, field):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, bad])
    with pytest.raises(PostFileError) as err:
        list(read_posts(path))
    assert f"{path}:2:" in str(err.value) and field in str(err.value)


def test_invalid_json_and_non_object_lines(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, "{not json", "[1, 2]", {**GOOD, "id": "3"}])
    with pytest.raises(PostFileError, match=r"bad.jsonl:2: not valid JSON"):
        list(read_posts(path))
    report = ReadReport(str(path))
    posts = list(read_posts(path, skip_invalid=True, report=report))
    assert [p.id for p in posts] == ["1", "3"]
    assert report.skipped == 2 and report.posts == 2
    assert "bad.jsonl:3" in report.reasons[1]


def test_duplicate_ids_across_files_are_not_silently_dropped(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [GOOD])
    b = write_jsonl(tmp_path / "b.jsonl", [GOOD])
    with pytest.raises(PostFileError, match="already read"):
        load_posts([a, b])
    posts, reports = load_posts([a, b], skip_invalid=True)
    assert len(posts) == 1 and reports[1].skipped == 1


def test_images_resolve_relative_to_the_file(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"synthetic")
    path = write_jsonl(tmp_path / "p.jsonl", [{**GOOD, "image": "img/a.jpg"}, {**GOOD, "id": "2", "image": "https://x/y.jpg"},
                                              {**GOOD, "id": "3", "image": "img/missing.jpg"}])
    posts = list(read_posts(path))
    assert posts[0].image == str((tmp_path / "img" / "a.jpg").resolve())
    assert posts[1].image == "https://x/y.jpg"
    assert posts[2].image is None  # no such file: the post is read without its image


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PostFileError, match="no such file"):
        list(read_posts(tmp_path / "nope.jsonl"))


def test_connector_style_empty_values_are_missing():
    post = Post(id=5, user_id="null", text="", image="None")
    assert post.id == "5" and post.user_id is None and post.text is None and post.image is None
    assert post.user_key == "p:5"


def test_hashtag_normalisation_keeps_japanese_and_folds_width():
    assert normalize_hashtag("＃Ｔｏｋｙｏ") == "tokyo"
    assert normalize_hashtag("#東京タワー") == "東京タワー"
    assert normalize_hashtag("#İstanbul") == "i̇stanbul"
    assert extract_hashtags("ramen #東京 and #Shibuya! ＃ラーメン #shibuya") == ["東京", "shibuya", "ラーメン"]
    assert hashtag_words("#NewYork2015") == "new york 2015"


def test_masking_removes_every_extracted_tag():
    text = "job alert #Hiring#jobs in #NYC, apply: http://x.co/#frag ＃求人"
    masked = mask_hashtags(text)
    assert extract_hashtags(masked) == []
    for tag in ("hiring", "jobs", "nyc", "求人"):
        assert tag not in masked.lower()
    assert "job alert" in masked and "apply" in masked


def test_masking_leaks_nothing_on_real_posts(tweets_path):
    checked = 0
    for post in read_posts(tweets_path):
        if not post.hashtags:
            continue
        masked = mask_hashtags(post.text).lower()
        assert extract_hashtags(masked) == []
        for tag in post.hashtags:
            assert f"#{tag}" not in masked
        checked += 1
    assert checked > 1500


def test_p2c_labels_known_cities():
    # Tokyo station, Los Angeles city hall, the Eiffel tower, Sydney opera house.
    lat = np.array([35.6812, 34.0537, 48.8584, -33.8568])
    lon = np.array([139.7671, -118.2427, 2.2945, 151.2153])
    cities, dist = nearest_cities(lat, lon)
    assert [c.country for c in cities] == ["JP", "US", "FR", "AU"]
    assert cities[1].name == "Los Angeles" and cities[2].name.startswith("Paris") and cities[3].name.startswith("Sydney")
    assert (dist < 15).all()


def test_p2c_merges_points_within_11_km_only():
    # Two points 5 km apart near Osaka, one 40 km away in Kyoto.
    lat = np.array([34.6937, 34.7386, 35.0116])
    lon = np.array([135.5023, 135.5023, 135.7681])
    assert distance_km(lat[0], lon[0], lat[1], lon[1])[0] < 11
    labeler = P2CLabeler().fit(lat, lon)
    assert labeler.group_[0] == labeler.group_[1] != labeler.group_[2]
    assert labeler.labels_[0] == labeler.labels_[1] != labeler.labels_[2]
    # A new point within 11 km of a group takes the group's label; the state round-trips.
    again = P2CLabeler.from_dict(json.loads(json.dumps(labeler.to_dict())))
    assert again.label(34.70, 135.51) == [labeler.labels_[0]]


def test_user_split_is_disjoint_and_stable():
    posts = [Post(id=str(i), user_id=f"u{i % 37}", text="x") for i in range(400)]
    a = split_users(posts, {"train": 0.8, "test": 0.2})
    b = split_users(list(reversed(posts)), {"train": 0.8, "test": 0.2})
    users = lambda ps: {p.user_key for p in ps}  # noqa: E731
    assert not users(a["train"]) & users(a["test"])
    assert users(a["test"]) == users(b["test"]) and a["test"]


def test_history_is_the_first_half_in_time():
    posts = [Post(id=str(i), user_id="u", text="x", created_at=f"2015-02-0{9 - i}T00:00:00Z") for i in range(5)]
    posts.append(Post(id="solo", text="single"))
    history, queries = history_and_queries(posts)
    assert [p.id for p in history] == ["4", "3"]
    assert [p.id for p in queries] == ["2", "1", "0", "solo"]
