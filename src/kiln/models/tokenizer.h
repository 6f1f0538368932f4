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

class Tokenizer {
 public:
  // Throws naming the file if it is missing or not a SentencePiece model.
  static Tokenizer load(const std::filesystem::path& path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  std::vector<int> encode(const std::string& text) const;  // BOS first
  std::string decode(const std::vector<int>& ids) const;   // specials skipped
  int bos_id() const;
  int eos_id() const;
  int vocab_size() const;

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace kiln::models
