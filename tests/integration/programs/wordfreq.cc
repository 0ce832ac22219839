// Counts the words on stdin and prints them by frequency. Exercises what a
// C++ program needs from its encrypted sections at run time: static
// constructors (.init_array), exceptions and unwinding (.eh_frame,
// .gcc_except_table), virtual calls (.data.rel.ro), libstdc++ imports, and
// string constants (.rodata). "--fail" throws through a virtual call and
// exits 3; "--top N" limits the output.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Banner {
  std::string text;
  Banner() : text("word frequencies (sealdrop test program)") {}
};
Banner banner;  // constructed before main, from .init_array

struct Counter {
  virtual ~Counter() = default;
  virtual void Add(const std::string& word) = 0;
  virtual std::vector<std::pair<std::string, long>> Sorted() const = 0;
};

struct MapCounter : Counter {
  std::map<std::string, long> counts;
  void Add(const std::string& word) override {
    if (word == "--explode--") throw std::runtime_error("the input asked for an exception");
    ++counts[word];
  }
  std::vector<std::pair<std::string, long>> Sorted() const override {
    std::vector<std::pair<std::string, long>> v(counts.begin(), counts.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return v;
  }
};

}  // namespace

int main(int argc, char** argv) {
  size_t top = 1000;
  std::unique_ptr<Counter> counter = std::make_unique<MapCounter>();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fail") {
      try {
        counter->Add("--explode--");
      } catch (const std::exception& e) {
        std::cerr << "wordfreq: " << e.what() << "\n";
        return 3;
      }
    } else if (a == "--top" && i + 1 < argc) {
      top = std::stoul(argv[++i]);
    } else {
      std::cerr << "wordfreq: unknown argument " << a << "\n";
      return 2;
    }
  }
  std::cout << banner.text << "\n";
  std::string word;
  while (std::cin >> word) counter->Add(word);
  size_t shown = 0;
  for (const auto& [w, n] : counter->Sorted()) {
    if (shown++ == top) break;
    std::cout << n << " " << w << "\n";
  }
  return 0;
}
