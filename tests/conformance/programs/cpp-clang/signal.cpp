// An exception nobody catches: std::terminate, SIGABRT.
#include <stdexcept>

int main() {
    throw std::runtime_error("unhandled");
}
