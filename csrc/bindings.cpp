// pybind11 bindings of the scorer core (the core itself lands with the scorer issue).
#include <pybind11/pybind11.h>

PYBIND11_MODULE(_scorer, m) {
  m.doc() = "wespeaker_avkd compiled trial scorer";
#ifdef WESPEAKER_AVKD_OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
