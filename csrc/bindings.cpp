// pybind11 bindings of the scorer core: array/argument checks, thread counts, GIL release, error translation.
// No math here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "cosine.h"
#include "key_table.h"
#include "metrics.h"
#include "score_file.h"
#include "score_writer.h"
#include "trial_list.h"
#include "trial_scan.h"

#ifndef WESPEAKER_AVKD_VERSION
#error "setup.py defines WESPEAKER_AVKD_VERSION (from wespeaker_avkd/version.py)"
#endif
#define WSAVKD_STRINGIFY(x) #x
#define WSAVKD_TO_STRING(x) WSAVKD_STRINGIFY(x)

namespace py = pybind11;
using namespace pybind11::literals;
using wsavkd::KeyTable;

namespace {

// Hands a std::vector's buffer to numpy without a copy (the capsule owns the vector).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({py::ssize_t(heap->size())}, {py::ssize_t(sizeof(T))}, heap->data(), owner);
}

// Refuses (TypeError) an array of another dtype, layout or rank instead of silently copying it.
template <class T>
py::array_t<T> checked(const py::handle& obj, const char* name, int ndim, const char* want) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array (" + want + ")");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<T>()) || !(a.flags() & py::array::c_style) || a.ndim() != ndim) {
    throw py::type_error(std::string(name) + " must be a C-contiguous " + want + " array, got dtype " +
                         std::string(py::str(a.dtype())) + " with " + std::to_string(a.ndim()) +
                         " dimension(s); convert it explicitly (np.ascontiguousarray(x, dtype=...))");
  }
  return py::reinterpret_borrow<py::array_t<T>>(obj);
}

void same_length(py::ssize_t a, py::ssize_t b, const char* what) {
  if (a != b)
    throw py::value_error(std::string(what) + " have different lengths: " + std::to_string(a) + " and " +
                          std::to_string(b));
}

// The thread count for a call (GIL held): ScoringError (a ValueError) on a negative count; a count beyond
// wsavkd::max_threads(), asked for or from OMP_NUM_THREADS, is capped with a RuntimeWarning instead of letting
// thread creation kill the interpreter.
int resolve_threads(int64_t requested, const char* fn) {
  std::string why;
  const int nt = wsavkd::capped_threads(requested, &why);
  if (!why.empty() && PyErr_WarnEx(PyExc_RuntimeWarning, (std::string(fn) + ": " + why).c_str(), 1) < 0)
    throw py::error_already_set();
  return nt;
}

py::dict trial_dict(wsavkd::TrialList&& t) {
  py::dict d("enroll"_a = to_numpy(std::move(t.enroll)), "test"_a = to_numpy(std::move(t.test)),
             "labels"_a = to_numpy(std::move(t.labels)), "form"_a = wsavkd::trial_form_name(t.form),
             "num_skipped"_a = t.num_skipped, "first_skipped"_a = t.first_skipped);
  if (t.form == wsavkd::TrialForm::kScore) d["scores"] = to_numpy(std::move(t.scores));
  return d;
}

// Keys read from a file as str: bytes that are not UTF-8 become U+FFFD, as Python reads text with "replace".
py::list text_list(const std::vector<std::string>& keys) {
  py::list out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    PyObject* s = PyUnicode_DecodeUTF8(keys[i].data(), py::ssize_t(keys[i].size()), "replace");
    if (!s) throw py::error_already_set();
    out[i] = py::reinterpret_steal<py::str>(s);
  }
  return out;
}

py::list lookup_keys(const KeyTable& t, const py::object& rows) {
  auto r = checked<int32_t>(rows, "rows", 1, "int32 (M,)");
  py::list out(r.size());
  const int32_t* p = r.data();
  for (py::ssize_t i = 0; i < r.size(); ++i) {
    if (p[i] < 0 || p[i] >= int64_t(t.size())) throw py::index_error("row out of range");
    const std::string_view k = t.key(size_t(p[i]));
    out[size_t(i)] = py::str(k.data(), k.size());
  }
  return out;
}

void bind_key_index(py::module_& m) {
  py::class_<KeyTable, std::shared_ptr<KeyTable>>(m, "KeyIndex", "Hash table from utterance key to row index.")
      .def(py::init<>())
      .def(py::init([](const std::vector<std::string>& keys) { return std::make_shared<KeyTable>(keys); }),
           py::arg("keys"), "Row i is keys[i]; raises ScoringError on a duplicate or empty key.")
      .def("__len__", &KeyTable::size)
      .def("find", &KeyTable::find, py::arg("key"), "Row of key, or -1.")
      .def(
          "key",
          [](const KeyTable& t, int64_t row) {
            if (row < 0 || row >= int64_t(t.size())) throw py::index_error("row out of range");
            return std::string(t.key(size_t(row)));
          },
          py::arg("row"))
      .def("keys", &KeyTable::keys, "All keys, in row order.")
      .def("lookup", &lookup_keys, py::arg("rows"), "Keys of rows (int32 array) as a list of str.");
}

py::dict read_trials(const std::string& path, const KeyTable& table, bool skip_missing, int64_t num_threads) {
  const int nt = resolve_threads(num_threads, "read_trials");
  wsavkd::TrialList t;
  {
    py::gil_scoped_release release;
    t = wsavkd::read_trials(path, table, skip_missing, nt);
  }
  return trial_dict(std::move(t));
}

py::dict read_score_file(const std::string& path) {
  auto table = std::make_shared<KeyTable>();
  wsavkd::TrialList t;
  {
    py::gil_scoped_release release;
    t = wsavkd::read_score_file(path, *table);
  }
  py::dict d = trial_dict(std::move(t));
  d["index"] = table;
  return d;
}

py::dict scan_trials(const std::string& path, const std::string& form) {
  wsavkd::TrialScan s;
  {
    py::gil_scoped_release release;
    s = wsavkd::scan_trials(path, form);
  }
  return py::dict("form"_a = s.have_form ? wsavkd::trial_form_name(s.form) : "",
                  "lines"_a = to_numpy(std::move(s.lines)), "enroll"_a = text_list(s.enroll),
                  "test"_a = text_list(s.test), "labels"_a = to_numpy(std::move(s.labels)), "problems"_a = s.problems);
}

void write_score_lines(int fd, const KeyTable& table, const py::object& enroll, const py::object& test,
                       const py::object& scores, const py::object& labels, int64_t num_threads) {
  auto e = checked<int32_t>(enroll, "enroll", 1, "int32 (M,)");
  auto t = checked<int32_t>(test, "test", 1, "int32 (M,)");
  auto s = checked<float>(scores, "scores", 1, "float32 (M,)");
  auto l = checked<int8_t>(labels, "labels", 1, "int8 (M,)");
  same_length(e.size(), t.size(), "enroll and test");
  same_length(e.size(), s.size(), "enroll and scores");
  same_length(e.size(), l.size(), "enroll and labels");
  const int nt = resolve_threads(num_threads, "write_score_lines");
  py::gil_scoped_release release;
  wsavkd::write_score_lines(fd, table, e.data(), t.data(), s.data(), l.data(), e.size(), nt);
}

py::array_t<float> cosine_scores(const py::object& emb, const py::object& enroll, const py::object& test,
                                 const py::object& mean, const KeyTable* names, int64_t num_threads) {
  auto x = checked<float>(emb, "emb", 2, "float32 (N, D)");
  auto e = checked<int32_t>(enroll, "enroll", 1, "int32 (M,)");
  auto t = checked<int32_t>(test, "test", 1, "int32 (M,)");
  same_length(e.size(), t.size(), "enroll and test");
  const int64_t n = x.shape(0), d = x.shape(1);
  const float* mp = nullptr;
  py::array_t<float> mv;
  if (!mean.is_none()) {
    mv = checked<float>(mean, "mean", 1, "float32 (D,)");
    if (mv.size() != d)
      throw py::value_error("the mean vector has dimension " + std::to_string(mv.size()) +
                            " but the embeddings have dimension " + std::to_string(d));
    mp = mv.data();
  }
  if (names && int64_t(names->size()) != n)
    throw py::value_error("the key index has " + std::to_string(names->size()) + " keys for " + std::to_string(n) +
                          " embedding rows");
  const int nt = resolve_threads(num_threads, "cosine_scores");
  py::array_t<float> out(e.size());
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    wsavkd::cosine_scores(x.data(), n, d, mp, e.data(), t.data(), e.size(), op, names, nt);
  }
  return out;
}

py::dict compute_metrics(const py::object& scores, const py::object& labels, const std::vector<double>& p_targets,
                         double c_miss, double c_fa) {
  auto s = checked<float>(scores, "scores", 1, "float32 (M,)");
  auto l = checked<int8_t>(labels, "labels", 1, "int8 (M,)");
  same_length(s.size(), l.size(), "scores and labels");
  wsavkd::Metrics r;
  {
    py::gil_scoped_release release;
    r = wsavkd::compute_metrics(s.data(), l.data(), s.size(), p_targets, c_miss, c_fa);
  }
  return py::dict("num_trials"_a = r.num_trials, "num_target"_a = r.num_target, "num_nontarget"_a = r.num_nontarget,
                  "eer"_a = r.eer, "eer_threshold"_a = r.eer_threshold, "eer_kaldi"_a = double(r.eer_kaldi),
                  "eer_kaldi_threshold"_a = double(r.eer_kaldi_threshold), "eer_rocch"_a = r.eer_rocch,
                  "min_dcf"_a = r.min_dcf, "min_dcf_threshold"_a = r.min_dcf_threshold);
}

py::tuple det_curve(const py::object& scores, const py::object& labels) {
  auto s = checked<float>(scores, "scores", 1, "float32 (M,)");
  auto l = checked<int8_t>(labels, "labels", 1, "int8 (M,)");
  same_length(s.size(), l.size(), "scores and labels");
  std::vector<double> pfa, pmiss, thr;
  {
    py::gil_scoped_release release;
    wsavkd::det_curve(s.data(), l.data(), s.size(), &pfa, &pmiss, &thr);
  }
  return py::make_tuple(to_numpy(std::move(pfa)), to_numpy(std::move(pmiss)), to_numpy(std::move(thr)));
}

void bind_functions(py::module_& m) {
  m.def("read_trials", &read_trials, py::arg("path"), py::arg("index"), py::arg("skip_missing") = false,
        py::arg("num_threads") = 0,
        "Parse a trial list -> dict(enroll, test (int32 rows), labels (int8), form, num_skipped, first_skipped).");
  m.def("scan_trials", &scan_trials, py::arg("path"), py::arg("form") = "",
        "Check every line of a trial list (form voxceleb|kaldi|unlabeled, '' = from its first line) -> dict(form, "
        "lines (int64), enroll, test (str), labels (int8) of good lines; problems: [(line, why)], line 0 = file).");
  m.def("read_score_file", &read_score_file, py::arg("path"),
        "Parse a score file -> dict(index, enroll, test, scores (float32), labels (int8)).");
  m.def("write_score_lines", &write_score_lines, py::arg("fd"), py::arg("index"), py::arg("enroll"), py::arg("test"),
        py::arg("scores"), py::arg("labels"), py::arg("num_threads") = 0,
        "Write `enroll test score [label]` lines to an open file descriptor.");
  m.def("cosine_scores", &cosine_scores, py::arg("emb"), py::arg("enroll"), py::arg("test"),
        py::arg("mean") = py::none(), py::arg("index") = nullptr, py::arg("num_threads") = 0,
        "Cosine scores (float32 (M,)) of row pairs of emb (float32 (N, D)), optional mean subtracted first.");
  m.def("compute_metrics", &compute_metrics, py::arg("scores"), py::arg("labels"), py::arg("p_targets"),
        py::arg("c_miss") = 1.0, py::arg("c_fa") = 1.0,
        "EER (crossing, Kaldi, ROCCH), its threshold and minDCF per p_target.");
  m.def("det_curve", &det_curve, py::arg("scores"), py::arg("labels"),
        "Operating points (p_fa, p_miss, thresholds), float64 arrays.");
  m.def("max_threads", &wsavkd::max_threads, "The most threads one scorer call uses (num_threads is capped there).");
}

}  // namespace

PYBIND11_MODULE(_scorer, m) {
  m.doc() = "wespeaker_avkd compiled trial scorer (C++ core in csrc/, see wespeaker_avkd.scoring)";
  m.attr("__version__") = WSAVKD_TO_STRING(WESPEAKER_AVKD_VERSION);
  m.attr("openmp") = wsavkd::kOpenMP;
  py::register_exception<wsavkd::ScorerError>(m, "ScoringError", PyExc_ValueError);
  bind_key_index(m);
  bind_functions(m);
}
