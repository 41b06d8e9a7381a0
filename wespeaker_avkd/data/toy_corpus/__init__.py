"""The embedded audio-visual toy corpus: procedural voices and faces in VoxCeleb's shape (see toy_corpus.yaml)."""
from wespeaker_avkd.data.toy_corpus.config import DEFAULT_CONFIG, load_config
from wespeaker_avkd.data.toy_corpus.layout import format_summary, generate_corpus
from wespeaker_avkd.data.toy_corpus.stamp import ensure_corpus, stale_reason

__all__ = ["DEFAULT_CONFIG", "load_config", "generate_corpus", "format_summary", "ensure_corpus", "stale_reason"]
