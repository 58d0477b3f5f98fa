"""Posts, their files, hashtags and place labels: the data every other part exchanges."""

from tagatlas.data.geo import distance_km, geodesic_medoid, pairwise_km
from tagatlas.data.hashtags import extract_hashtags, hashtag_words, mask_hashtags, normalize_hashtag, normalize_hashtags
from tagatlas.data.photo import PhotoMetadata, read_photo_metadata
from tagatlas.data.places import City, P2CLabeler, city, nearest_cities
from tagatlas.data.post import Post
from tagatlas.data.reader import PostFileError, ReadReport, batches, load_posts, read_posts
from tagatlas.data.split import history_and_queries, split_users, user_fold
from tagatlas.data.text import clean_text

__all__ = [
    "City", "P2CLabeler", "PhotoMetadata", "Post", "PostFileError", "ReadReport", "batches", "city", "clean_text", "distance_km",
    "extract_hashtags", "geodesic_medoid", "hashtag_words", "load_posts", "mask_hashtags", "nearest_cities",
    "normalize_hashtag", "normalize_hashtags", "pairwise_km", "read_photo_metadata", "read_posts", "history_and_queries", "split_users", "user_fold",
]
