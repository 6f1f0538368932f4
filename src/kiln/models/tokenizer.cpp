#include "kiln/models/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstring>

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

namespace {

// The protobuf wire format, as much of it as a SentencePiece ModelProto
// needs (field numbers from sentencepiece_model.proto).
struct ProtoWriter {
  std::string bytes;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<char>(v));
  }
  void key(int field, int wire) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  void integer(int field, int64_t v) {
    key(field, 0);
    varint(static_cast<uint64_t>(v));  // negative int32s are ten-byte varints, as protobuf writes them
  }
  void text(int field, std::string_view v) {
    key(field, 2);
    varint(v.size());
    bytes.append(v);
  }
  void f32(int field, float v) {
    key(field, 5);
    char raw[4];
    std::memcpy(raw, &v, 4);
    bytes.append(raw, 4);
  }
};

std::string model_proto(const Vocabulary& v) {
  ProtoWriter model;
  bool has_bytes = false;
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    ProtoWriter piece;
    piece.text(1, v.pieces[i]);
    piece.f32(2, v.scores[i]);
    piece.integer(3, v.types[i]);
    model.text(1, piece.bytes);
    has_bytes |= v.types[i] == Vocabulary::byte;
  }
  auto piece_of = [&](int id, std::string_view fallback) {
    return id >= 0 && static_cast<size_t>(id) < v.pieces.size() ? std::string_view(v.pieces[static_cast<size_t>(id)])
                                                                 : fallback;
  };
  ProtoWriter trainer;
  trainer.integer(3, 2);  // model_type BPE
  trainer.integer(4, static_cast<int64_t>(v.pieces.size()));
  trainer.integer(35, has_bytes ? 1 : 0);  // byte_fallback
  trainer.integer(40, v.unk_id);
  trainer.integer(41, v.bos_id);
  trainer.integer(42, v.eos_id);
  trainer.integer(43, -1);  // pad_id
  trainer.text(45, piece_of(v.unk_id, "<unk>"));
  trainer.text(46, piece_of(v.bos_id, "<s>"));
  trainer.text(47, piece_of(v.eos_id, "</s>"));
  model.text(2, trainer.bytes);
  ProtoWriter normalizer;
  normalizer.text(1, "identity");
  normalizer.integer(3, v.add_space_prefix ? 1 : 0);  // add_dummy_prefix
  normalizer.integer(4, 0);                           // remove_extra_whitespaces
  normalizer.integer(5, 1);                           // escape_whitespaces
  model.text(3, normalizer.bytes);
  return model.bytes;
}

}  // namespace

Tokenizer Tokenizer::from_vocabulary(const Vocabulary& v, const std::string& what) {
  if (v.pieces.empty()) fail("{}: the vocabulary has no tokens", what);
  if (v.scores.size() != v.pieces.size() || v.types.size() != v.pieces.size())
    fail("{}: {} tokens but {} scores and {} token types", what, v.pieces.size(), v.scores.size(), v.types.size());
  const auto count = static_cast<int>(v.pieces.size());
  for (int id : {v.bos_id, v.eos_id, v.unk_id})
    if (id >= count) fail("{}: special token id {} is past the {} tokens", what, id, count);
  for (size_t i = 0; i < v.types.size(); ++i)
    if (v.types[i] < Vocabulary::normal || v.types[i] > Vocabulary::byte)
      fail("{}: token {} ('{}') has type {}, not one of SentencePiece's 1..6", what, i, v.pieces[i], v.types[i]);
  Tokenizer t;
  const auto status = t.processor_->LoadFromSerializedProto(model_proto(v));
  if (!status.ok()) fail("{}: not a usable SentencePiece vocabulary: {}", what, status.ToString());
  return t;
}

Vocabulary Tokenizer::vocabulary() const {
  Vocabulary v;
  for (int id = 0; id < vocab_size(); ++id) {
    v.pieces.push_back(processor_->IdToPiece(id));
    v.scores.push_back(processor_->GetScore(id));
    v.types.push_back(processor_->IsUnknown(id)   ? Vocabulary::unknown
                      : processor_->IsControl(id) ? Vocabulary::control
                      : processor_->IsByte(id)    ? Vocabulary::byte
                      : processor_->IsUnused(id)  ? Vocabulary::unused
                                                  : Vocabulary::normal);
  }
  v.bos_id = processor_->bos_id();
  v.eos_id = processor_->eos_id();
  v.unk_id = processor_->unk_id();
  return v;
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
