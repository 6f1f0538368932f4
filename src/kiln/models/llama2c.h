#pragma once
// llama2.c checkpoints (Karpathy's "legacy" export, version 0, as run.c
// reads it) and their tokenizer.bin, seen as a Hugging Face-layout store:
//   header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//     vocab_size, seq_len; vocab_size < 0 when the classifier is not the
//     embedding), then f32 arrays: token embedding [vocab, dim], attention
//     norms [L, dim], wq [L, heads*hd, dim], wk, wv [L, kv*hd, dim], wo
//     [L, dim, dim], ffn norms [L, dim], w1 [L, hidden, dim], w2 [L, dim,
//     hidden], w3 [L, hidden, dim], final norm [dim], the RoPE tables
//     (skipped), the classifier [vocab, dim] when not shared.
// The weights stay mapped (each layer's slice of the stacked arrays is a
// view). llama2.c rotates adjacent pairs (Meta's RoPE), so the view asks
// for interleaved RoPE, as for GGUF. tokenizer.bin: int32 max token length,
// then per id: f32 score, int32 length, the bytes ('▁' stored as ' ').
#include <filesystem>

#include "kiln/io/buffer_store.h"
#include "kiln/io/weight_source.h"
#include "kiln/models/tokenizer.h"

namespace kiln::models::llama {

// True for a file with the .bin extension (llama2.c's checkpoints carry no magic).
bool is_llama2c(const std::filesystem::path& path);

// The checkpoint as a store in the Hugging Face layout, with config keys;
// an error naming the file for a header or size that does not add up.
io::BufferStore open_llama2c(const std::filesystem::path& path);
io::BufferStore parse_llama2c(io::SourcePtr source);  // the same from bytes (fuzz/llama2c_fuzz.cpp)

// The tokenizer.bin beside a checkpoint as a SentencePiece-style vocabulary
// (ids 1 and 2 BOS and EOS, <0xNN> pieces bytes, id 0 unknown).
Vocabulary read_llama2c_tokenizer(const std::filesystem::path& path, int64_t vocab_size);
Vocabulary parse_llama2c_tokenizer(const io::WeightSource& source, int64_t vocab_size);

}  // namespace kiln::models::llama
