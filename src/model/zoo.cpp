// The built-in models.
#include "convnet/zoo.hpp"

namespace convnet {

std::vector<std::string> model_names() { return {"lenet", "vgg-small"}; }

template <class T>
Sequential<T> make_model(const std::string& name, int64_t classes) {
  Sequential<T> m;
  if (name == "lenet") {
    m.template emplace<Conv2d>(Conv2dOptions{.out_channels = 6, .kernel = 5, .pad = 2});
    m.template emplace<ReLU>();
    m.template emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
    m.template emplace<Conv2d>(Conv2dOptions{.out_channels = 16, .kernel = 5});
    m.template emplace<ReLU>();
    m.template emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
    m.template emplace<Flatten>();
    m.template emplace<Linear>(LinearOptions{.out_features = 120});
    m.template emplace<ReLU>();
    m.template emplace<Linear>(LinearOptions{.out_features = 84});
    m.template emplace<ReLU>();
    m.template emplace<Linear>(LinearOptions{.out_features = classes});
    return m;
  }
  if (name == "vgg-small") {
    auto conv = [&](int64_t channels) {
      m.template emplace<Conv2d>(Conv2dOptions{.out_channels = channels, .kernel = 3, .pad = 1});
      m.template emplace<ReLU>();
    };
    auto pool = [&] { m.template emplace<MaxPool2d>(Pool2dOptions{.kernel = 2}); };
    conv(32), conv(32), pool();
    conv(64), conv(64), pool();
    conv(128), pool();
    m.template emplace<Flatten>();
    m.template emplace<Linear>(LinearOptions{.out_features = 256});
    m.template emplace<ReLU>();
    m.template emplace<Linear>(LinearOptions{.out_features = classes});
    return m;
  }
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(detail::concat("unknown model '", name, "' (known: ", known, ")"));
}

template Sequential<float> make_model<float>(const std::string&, int64_t);
template Sequential<double> make_model<double>(const std::string&, int64_t);

}  // namespace convnet
