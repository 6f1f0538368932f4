#pragma once
// Text <-> token ids with a SentencePiece model (tokenizer.model), the way
// Hugging Face's LlamaTokenizer does it: encode gives the BOS id followed by
// SentencePiece's pieces; decode skips the special ids (unknown, BOS, EOS).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kiln::models {

// A SentencePiece BPE vocabulary as GGUF holds it (tokenizer.ggml.* with
// model "llama"): pieces, scores and piece types, numbered as both
// SentencePiece and GGUF number them.
struct Vocabulary {
  enum Type : int { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int> types;
  int bos_id = -1, eos_id = -1, unk_id = 0;
  bool add_space_prefix = true;  // SentencePiece's add_dummy_prefix
};

class Tokenizer {
 public:
  // Throws naming the file if it is missing or not a SentencePiece model.
  static Tokenizer load(const std::filesystem::path& path);
  Tokenizer();  // empty (no pieces) until a loaded one is assigned
  // The BPE tokenizer of `vocabulary` (byte fallback where it has byte
  // pieces, no normalization, as llama.cpp runs GGUF vocabularies); `what`
  // names its source in errors.
  static Tokenizer from_vocabulary(const Vocabulary& vocabulary, const std::string& what);
  // This tokenizer's vocabulary (what `kiln quantize` writes into GGUF).
  Vocabulary vocabulary() const;
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  std::vector<int> encode(const std::string& text) const;  // BOS first
  std::string decode(const std::vector<int>& ids) const;   // specials skipped
  int bos_id() const;
  int eos_id() const;
  int vocab_size() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace kiln::models
