// Unit tests for hse::eval's VQA metrics (HSENet's acc_class / acc_text / major-class
// report) and retrieval metrics (recall@K, CT-CLIP V2V label Jaccard), on small cases
// computed by hand.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/eval/retrieval.h"
#include "hse/eval/vqa.h"

using namespace hse::eval;

TEST_CASE("vqa: strip and acc_class follow Python's str.strip / split / in") {
  CHECK(py_strip("  a b \t\n") == "a b");
  CHECK(py_strip("\x1c\x1fx\x0b\x0c") == "x");
  CHECK(py_strip("\xc2\xa0lung\xe3\x80\x80") == "lung");  // U+00A0, U+3000
  CHECK(py_strip("\xe2\x80\x8blung") == "\xe2\x80\x8blung");  // U+200B is not whitespace in Python
  CHECK(py_strip("   ").empty());

  CHECK(acc_class("  Lung / right upper lobe ", "right lung upper lobe"));  // "lung " is a substring
  CHECK(acc_class("LUNG", "Right Lung"));
  CHECK(acc_class("", "anything"));          // empty prediction: correct (HSENet's rule)
  CHECK(acc_class(" \n ", "anything"));      // whitespace only: empty after strip
  CHECK(acc_class("/heart", "lung"));        // split("/")[0] == ""
  CHECK(acc_class("lung/heart", "left lung lower lobe"));
  CHECK_FALSE(acc_class("heart/lung", "left lung lower lobe"));
  CHECK_FALSE(acc_class("Heart", "lung"));
  CHECK_FALSE(acc_class("right lung upper lobe", "right lung"));  // pred longer than answer

  CHECK(acc_text(" Right Lung Upper Lobe\n", "right lung upper lobe "));
  CHECK_FALSE(acc_text("right lung", "right lung upper lobe"));
  CHECK(acc_text("", "  "));
}

TEST_CASE("vqa: major_class takes the first hit in HSENet's list order") {
  CHECK(major_class("right lung upper lobe") == "Lung");
  CHECK(major_class("trachea and bronchie") == "Trachea and Bronchie");
  CHECK(major_class("Trachea") == "Others");  // only the full "trachea and bronchie" matches
  CHECK(major_class("mediastinum; heart") == "Mediastinum");
  CHECK(major_class("heart and lung") == "Lung");  // list order, not text order
  CHECK(major_class("pleural cavity") == "Pleura");
  CHECK(major_class("THYROID") == "Thyroid");
  CHECK(major_class("") == "Others");
  CHECK(major_class_index("abdomen") == 9);
}

TEST_CASE("vqa: score_vqa on a hand-computed case") {
  // answer (true class)           pred (pred class)          acc_class acc_text
  // right lung upper lobe (Lung)   right lung upper lobe (Lung)    1        1
  // left lung lower lobe (Lung)    heart (Heart)                   0        0
  // heart (Heart)                  heart (Heart)                   1        1
  // mediastinum (Mediastinum)      lung (Lung)                     0        0
  // pleura (Pleura)                "" (Others)                     1        0
  const std::vector<std::string> answers = {"right lung upper lobe", "left lung lower lobe", "heart", "mediastinum",
                                            "pleura"};
  const std::vector<std::string> preds = {"right lung upper lobe", "heart", "heart", "lung", ""};
  const VqaScores s = score_vqa(preds, answers);
  CHECK(s.n == 5);
  CHECK(s.acc_class == doctest::Approx(0.6));
  CHECK(s.acc_text == doctest::Approx(0.4));
  // groups (by answer): Lung 1/2, 1/2; Heart 1, 1; Mediastinum 0, 0; Pleura 1, 0
  CHECK(s.group_n[0] == 2);
  CHECK(s.acc_class_macro == doctest::Approx(2.5 / 4));
  CHECK(s.acc_text_macro == doctest::Approx(1.5 / 4));
  // classification report over the 5 classes present: Lung, Mediastinum, Heart, Pleura, Others
  CHECK(s.n_present == 5);
  CHECK(s.present[10]);   // Others: predicted once, never true
  CHECK_FALSE(s.present[1]);
  CHECK(s.precision[0] == doctest::Approx(0.5));  // Lung
  CHECK(s.recall[0] == doctest::Approx(0.5));
  CHECK(s.precision[3] == doctest::Approx(0.5));  // Heart
  CHECK(s.recall[3] == doctest::Approx(1.0));
  CHECK(s.f1[3] == doctest::Approx(2.0 / 3));
  CHECK(s.precision[2] == 0.0);  // Mediastinum: never predicted, 0/0 -> 0
  CHECK(s.support[2] == 1);
  CHECK(s.recall[10] == 0.0);  // Others: no support, 0/0 -> 0
  CHECK(s.accuracy == doctest::Approx(0.4));
  CHECK(s.macro_precision == doctest::Approx(0.2));
  CHECK(s.macro_recall == doctest::Approx(0.3));
  CHECK(s.macro_f1 == doctest::Approx(7.0 / 30));
  CHECK(s.weighted_precision == doctest::Approx(0.3));
  CHECK(s.weighted_recall == doctest::Approx(0.4));
  CHECK(s.weighted_f1 == doctest::Approx(1.0 / 3));
  // Checked with scikit-learn 1.x: classification_report(["L","L","H","M","P"], ["L","H","H","L","O"],
  // zero_division=0, digits=4) prints H 0.5/1.0/0.6667, L 0.5/0.5/0.5, M, O, P 0; accuracy 0.4000;
  // macro avg 0.2000 0.3000 0.2333; weighted avg 0.3000 0.4000 0.3333.
  CHECK_THROWS_AS(score_vqa({"a"}, {}), hse::cli::Error);
}

TEST_CASE("retrieval: recall@K") {
  const std::vector<std::vector<std::string>> r = {{"a", "b", "c"}, {"c", "a", "b"}, {"b", "c"}};
  const std::vector<std::string> pos = {"a", "b", "c"};
  CHECK(recall_at_k(r, pos, 1) == doctest::Approx(1.0 / 3));
  CHECK(recall_at_k(r, pos, 2) == doctest::Approx(2.0 / 3));
  CHECK(recall_at_k(r, pos, 3) == doctest::Approx(1.0));
  CHECK(recall_at_k(r, pos, 100) == doctest::Approx(1.0));
  CHECK(recall_at_k({}, {}, 5) == 0.0);
  CHECK_THROWS_AS(recall_at_k(r, pos, 0), hse::cli::Error);
  CHECK_THROWS_AS(recall_at_k(r, {"a"}, 1), hse::cli::Error);
}

TEST_CASE("retrieval: jaccard, ranking ties, pool") {
  LabelVec a{}, b{}, z{};
  a[0] = a[1] = 1;
  b[1] = b[2] = 1;
  CHECK(jaccard(a, b) == doctest::Approx(1.0 / 3));
  CHECK(jaccard(a, a) == 1.0);
  CHECK(jaccard(z, z) == 0.0);  // 0/0 := 0 (cannot happen with the pool rule)
  CHECK(jaccard(z, b) == 0.0);
  CHECK(rank_descending({0.1, 0.9, 0.5, 0.9}) == std::vector<int>{1, 3, 2, 0});  // stable ties
  CHECK(rank_descending({0.1, 0.9, 0.5, 0.9}, 2) == std::vector<int>{1, 3});
  const LabelMap m = {{"A", a}, {"B", b}, {"Z", z}};
  CHECK(v2v_pool({"Z", "B", "A"}, m) == std::vector<std::string>{"B", "A"});
  CHECK(v2v_filter_ranking({"A", "Z", "B"}, m) == std::vector<std::string>{"A", "B"});
  CHECK_THROWS_AS(v2v_pool({"Q"}, m), hse::cli::Error);
}

TEST_CASE("retrieval: V2V true precision@K versus CT-CLIP's cumulative MAP@K") {
  // Labels: A = {0,1}, B = {0}, C = {1,2}, D = {2}, Z = {} (not in the pool).
  // Queries A, B, Z (all volumes with labels; the query itself stays in its ranking).
  // Rankings over the pool {A,B,C,D}:  A: A C B D   B: C B D A   Z: D A B C
  // Jaccard:  A-A 1, A-C 1/3, A-B 1/2, A-D 0;  B-C 0, B-B 1, B-D 0, B-A 1/2;  Z-anything 0.
  // ks = 1, 2, 4. Per-query means:
  //   K=1: A 1,            B 0,            Z 0   -> true 1/3
  //   K=2: A (1+1/3)/2=2/3, B (0+1)/2=1/2,  Z 0   -> true 7/18
  //   K=4: A 11/24,         B 3/8,          Z 0   -> true 5/18
  // CT-CLIP appends each query's mean to ratios_external and never resets it:
  //   K=1: mean(1, 0, 0) = 1/3
  //   K=2: mean(1, 0, 0, 2/3, 1/2, 0) = 13/36 (= mean of the true K=1 and K=2 values)
  //   K=4: mean of all 9 entries = (1/3 + 7/18 + 5/18) / 3 = 1/3
  // (Appending every hit's Jaccard instead of the per-query mean would give 10/27 at K=2: that
  //  is not what CT-CLIP computes.) A line-by-line Python copy of CT-CLIP's loop (calc_similarity,
  //  ratios_external) on this example prints [0.3333, 0.3611, 0.3333].
  LabelVec A{}, B{}, C{}, D{}, Z{};
  A[0] = A[1] = 1;
  B[0] = 1;
  C[1] = C[2] = 1;
  D[2] = 1;
  const LabelMap m = {{"A", A}, {"B", B}, {"C", C}, {"D", D}, {"Z", Z}};
  CHECK(v2v_pool({"A", "B", "C", "D", "Z"}, m) == std::vector<std::string>{"A", "B", "C", "D"});
  const std::vector<std::string> q = {"A", "B", "Z"};
  const std::vector<std::vector<std::string>> r = {{"A", "C", "B", "D"}, {"C", "B", "D", "A"}, {"D", "A", "B", "C"}};
  const std::vector<int> ks = {1, 2, 4};
  const auto truth = v2v_precision_at_k(q, r, m, ks);
  const auto cum = v2v_map_cumulative(q, r, m, ks);
  REQUIRE(truth.size() == 3);
  REQUIRE(cum.size() == 3);
  CHECK(truth[0] == doctest::Approx(1.0 / 3));
  CHECK(truth[1] == doctest::Approx(7.0 / 18));
  CHECK(truth[2] == doctest::Approx(5.0 / 18));
  CHECK(cum[0] == doctest::Approx(1.0 / 3));
  CHECK(cum[1] == doctest::Approx(13.0 / 36));
  CHECK(cum[2] == doctest::Approx(1.0 / 3));
  // K larger than the ranking: the mean runs over what there is (CT-CLIP's sorted(...)[:k]).
  const auto big = v2v_precision_at_k(q, r, m, {50});
  CHECK(big[0] == doctest::Approx(truth[2]));
  // errors
  CHECK_THROWS_AS(v2v_precision_at_k({"A"}, {{}}, m, ks), hse::cli::Error);
  CHECK_THROWS_AS(v2v_precision_at_k({"A"}, {{"Q"}}, m, ks), hse::cli::Error);
  CHECK_THROWS_AS(v2v_precision_at_k({"A"}, {{"A"}}, m, {0}), hse::cli::Error);
  CHECK_THROWS_AS(v2v_map_cumulative(q, {{"A"}}, m, ks), hse::cli::Error);
}
