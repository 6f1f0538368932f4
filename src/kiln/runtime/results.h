#pragma once
// What an executable returns: the Buffer-side twin of what the traced
// function returned. One rule, applied recursively:
//
//   Tensor                       -> Buffer
//   std::vector<T>               -> std::vector<twin of T>
//   std::array<T, N>             -> std::array<twin of T, N>
//   std::tuple<Ts...>, pair<A,B> -> std::tuple / std::pair of the twins
//   S<Tensor>                    -> S<Buffer>, for a struct template whose
//                                   fields are described inside its body
//                                   (BOOST_DESCRIBE_CLASS)
//   S (KILN_FIELDS)              -> kiln::Outputs<S>: out[&S::field] is the
//                                   twin of that field
//
// The outputs come back from the backend as one flat list in the order
// tracing visited them; the lengths of the vectors met on the way (the
// "layout", recorded at trace time) put them back into shape.
#include <array>
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/frontend/tensor.h"
#include "kiln/runtime/buffer.h"

namespace kiln {
namespace detail {

template <typename T>
concept DescribedStruct = boost::describe::has_describe_members<T>::value;

template <typename T>
struct BufferType;

template <typename S>
struct FieldTypes;

}  // namespace detail

// The results of a function that returned a plain described struct S:
// out[&S::logits] is the Buffer (or vector, tuple, ... of Buffers) of field
// `logits`.
template <typename S>
class Outputs {
 public:
  using Fields = typename detail::FieldTypes<S>::type;  // std::tuple of each field's twin

  template <typename F>
  const typename detail::BufferType<F>::type& operator[](F S::*field) const {
    using Members = boost::describe::describe_members<S, boost::describe::mod_public>;
    const typename detail::BufferType<F>::type* found = nullptr;
    boost::mp11::mp_for_each<boost::mp11::mp_iota_c<boost::mp11::mp_size<Members>::value>>([&](auto index) {
      using Member = boost::mp11::mp_at_c<Members, decltype(index)::value>;
      if constexpr (std::is_same_v<std::remove_cv_t<decltype(Member::pointer)>, F S::*>)
        if (Member::pointer == field) found = &std::get<decltype(index)::value>(fields);
    });
    if (found == nullptr) fail("[outputs] that member is not one of the described fields of the result struct");
    return *found;
  }

  Fields fields;  // in field order
};

namespace detail {

template <>
struct BufferType<Tensor> {
  using type = Buffer;
};
template <typename T>
struct BufferType<std::vector<T>> {
  using type = std::vector<typename BufferType<T>::type>;
};
template <typename T, size_t N>
struct BufferType<std::array<T, N>> {
  using type = std::array<typename BufferType<T>::type, N>;
};
template <typename... Ts>
struct BufferType<std::tuple<Ts...>> {
  using type = std::tuple<typename BufferType<Ts>::type...>;
};
template <typename A, typename B>
struct BufferType<std::pair<A, B>> {
  using type = std::pair<typename BufferType<A>::type, typename BufferType<B>::type>;
};
template <template <typename> class S>
requires DescribedStruct<S<Tensor>>
struct BufferType<S<Tensor>> {
  using type = S<Buffer>;
};
template <typename S>
requires DescribedStruct<S>
struct BufferType<S> {
  using type = Outputs<S>;
};

template <typename S>
struct FieldTypes {
  template <typename Member>
  using Twin = typename BufferType<std::remove_cvref_t<decltype(std::declval<S&>().*Member::pointer)>>::type;
  using type = boost::mp11::mp_rename<
      boost::mp11::mp_transform<Twin, boost::describe::describe_members<S, boost::describe::mod_public>>, std::tuple>;
};

template <typename R>
using BufferResult = typename BufferType<std::remove_cvref_t<R>>::type;

// Walks the flat outputs and the vector lengths while building a result.
struct ResultCursor {
  std::vector<Buffer>& outputs;
  const std::vector<size_t>& layout;
  size_t next_output = 0;
  size_t next_length = 0;

  Buffer output() {
    if (next_output >= outputs.size()) fail("[call] the program returned fewer outputs than the result holds");
    return outputs[next_output++];
  }
  size_t length() {
    if (next_length >= layout.size()) fail("[call] the result's layout is shorter than its vectors");
    return layout[next_length++];
  }
};

template <typename B>
void assemble(B& result, ResultCursor& cursor);

template <typename T>
struct IsBufferVector : std::false_type {};
template <typename T>
struct IsBufferVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsBufferArray : std::false_type {};
template <typename T, size_t N>
struct IsBufferArray<std::array<T, N>> : std::true_type {};
template <typename T>
struct IsOutputs : std::false_type {};
template <typename S>
struct IsOutputs<Outputs<S>> : std::true_type {};

template <typename B>
void assemble(B& result, ResultCursor& cursor) {
  if constexpr (std::is_same_v<B, Buffer>) {
    result = cursor.output();
  } else if constexpr (IsBufferVector<B>::value) {
    result.resize(cursor.length());
    for (auto& item : result) assemble(item, cursor);
  } else if constexpr (IsBufferArray<B>::value) {
    for (auto& item : result) assemble(item, cursor);
  } else if constexpr (IsOutputs<B>::value) {
    std::apply([&](auto&... field) { (assemble(field, cursor), ...); }, result.fields);
  } else if constexpr (DescribedStruct<B>) {
    using Members = boost::describe::describe_members<B, boost::describe::mod_public>;
    boost::mp11::mp_for_each<Members>([&](auto member) { assemble(result.*member.pointer, cursor); });
  } else {
    // std::tuple and std::pair, elements in order.
    std::apply([&](auto&... item) { (assemble(item, cursor), ...); }, result);
  }
}

template <typename B>
B make_result(std::vector<Buffer>& outputs, const std::vector<size_t>& layout) {
  B result{};
  ResultCursor cursor{outputs, layout};
  assemble(result, cursor);
  return result;
}

}  // namespace detail
}  // namespace kiln
