#include "kiln/models/tokenizer.h"

#include <sentencepiece_processor.h>

#include "kiln/core/error.h"

namespace kiln::models {

Tokenizer::Tokenizer() : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    fail("tokenizer '{}' does not exist (a model directory needs its SentencePiece tokenizer.model)", path.string());
  Tokenizer t;
  const auto status = t.processor_->Load(path.string());
  if (!status.ok()) fail("tokenizer '{}' is not a SentencePiece model: {}", path.string(), status.ToString());
  return t;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  if (!status.ok()) fail("tokenizer: cannot encode the prompt: {}", status.ToString());
  if (bos_id() >= 0) ids.insert(ids.begin(), bos_id());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> kept;
  for (int id : ids)
    if (id >= 0 && id < vocab_size() && !processor_->IsControl(id) && !processor_->IsUnknown(id)) kept.push_back(id);
  std::string text;
  const auto status = processor_->Decode(kept, &text);
  if (!status.ok()) fail("tokenizer: cannot decode: {}", status.ToString());
  return text;
}

int Tokenizer::bos_id() const { return processor_->bos_id(); }
int Tokenizer::eos_id() const { return processor_->eos_id(); }
int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace kiln::models
