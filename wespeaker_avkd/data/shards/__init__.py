"""Tar shards of a data dir in WeSpeaker's shard format (+ face frames and fbank): the format (shards/format.py),
the member index (shards/index.py), per-utterance decoding (shards/codecs.py) and the datasets
(shards/readers.py); data/shard_writer.py packs them. This package's namespace gathers their public names.

Format (docs/shards.md). A shard is a plain (uncompressed) tar; each utterance is a run of consecutive
members named `<key>.<postfix>`, where the key is the member name up to its LAST dot, so keys may contain '/'
and '.' (VoxCeleb's `idNNNNN/<video>/NNNNN`). WeSpeaker's own writer puts `<key>.spk` (the speaker id, utf-8
text) and `<key>.wav` (the audio file's bytes; the postfix is the file's extension) in each shard, and its
reader groups consecutive members by that key, so our shards read there as audio shards. Beside them we add
`<key>.npy` (the stored fbank matrix, float32 (T, F), numpy's .npy bytes; when the data dir has feats.scp) and
`<key>.face000`, `<key>.face001`, ... (the encoded bytes of the utterance's face frames, in faces.scp order).
A shard list is a text file of one tar path per line (WeSpeaker's shard.list). Member headers carry no time
stamp or owner, so the same inputs give byte-identical tars.

Reading. An index of every shard (member offsets, read from the tar headers once when a loader is built) lets
each reader fetch only the members it needs with positioned reads of the open tar file:
- training (ShardTrainDataset, iterable): the epoch's utterance sequence is the shards in list order (shuffled
  per epoch when `shuffle`), cut into equal contiguous parts, one per DDP rank (padded by wrapping to equal
  length, like the map sampler, so ranks run the same number of steps); each rank's part is shuffled in
  blocks of `shuffle_size` utterances (WeSpeaker's shuffle buffer: fill, shuffle, emit) and cut into batches;
  batch b goes to DataLoader worker b % num_workers, so the main process receives batches in order 0, 1, 2,
  ... whatever the number of workers. Each worker reads the utterances of its batches block by block in file
  order (sequential reads with gaps). Per batch, the chunk length and each item's seed come from
  samplers.batch_draws, exactly as the map sampler's; without shuffling, one rank reads utterances in list
  order, so shards written in sorted key order give the very batches of the map loader with `shuffle: false`.
- evaluation (ShardEvalDataset, map-style): utterances in sorted key order, whole (no chunking), batched by the
  same samplers as the map datasets, so extraction from shards equals extraction from raw files exactly.
"""
from wespeaker_avkd.data.shards.codecs import (
    AudioCodec,
    Codec,
    VisualCodec,
    decode_audio,
    decode_npy,
    wav_header_frames,
)
from wespeaker_avkd.data.shards.format import (
    AUDIO_POSTFIXES,
    DEFAULT_SHUFFLE_SIZE,
    FACE_PREFIX,
    FEATS_POSTFIX,
    INDEX_SUFFIX,
    SHARD_LIST,
    SPK_POSTFIX,
    ShardEntry,
    ShardError,
    face_postfix,
    member_name,
    read_shard_list,
    split_member,
)
from wespeaker_avkd.data.shards.index import (
    MemberReader,
    ShardIndex,
    check_index_keys,
    index_shard,
    load_shard_index,
    read_index_file,
    write_index_file,
)
from wespeaker_avkd.data.shards.readers import ShardEvalDataset, ShardItems, ShardTrainDataset, epoch_batches

__all__ = [
    "AUDIO_POSTFIXES", "DEFAULT_SHUFFLE_SIZE", "FACE_PREFIX", "FEATS_POSTFIX", "INDEX_SUFFIX", "SHARD_LIST",
    "SPK_POSTFIX", "AudioCodec", "Codec", "MemberReader", "ShardEntry", "ShardError", "ShardEvalDataset",
    "ShardIndex", "ShardItems", "ShardTrainDataset", "VisualCodec", "check_index_keys", "decode_audio",
    "decode_npy", "epoch_batches", "face_postfix", "index_shard", "load_shard_index", "member_name",
    "read_index_file", "read_shard_list", "split_member", "wav_header_frames", "write_index_file",
]
