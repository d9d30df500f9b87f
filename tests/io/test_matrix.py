"""read_matrix and read_class_indices: .npy, .npz, .parquet, .csv and malformed files."""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxopost.errors import InputError
from taxopost.io import read_class_indices, read_matrix

SCORES = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], dtype=np.float32)


def save_parquet(path, columns):
    pq.write_table(pa.table(columns), path)
    return path


# -- .npy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_matrix_npy_keeps_the_float_type(tmp_path, dtype):
    np.save(tmp_path / "s.npy", SCORES.astype(dtype))
    matrix = read_matrix(tmp_path / "s.npy")
    assert matrix.dtype == dtype
    np.testing.assert_array_equal(matrix, SCORES.astype(dtype))


@pytest.mark.parametrize(("stored", "read"), [(np.float16, np.float32), (np.int32, np.float64)])
def test_read_matrix_npy_widens_other_numbers(tmp_path, stored, read):
    np.save(tmp_path / "s.npy", np.ones((2, 3), dtype=stored))
    assert read_matrix(tmp_path / "s.npy").dtype == read


def test_read_matrix_npy_one_dimensional_is_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.ones(3))
    with pytest.raises(InputError, match=r"s\.npy: scores=\(3,\): expected a non-empty matrix"):
        read_matrix(tmp_path / "s.npy")


def test_read_matrix_npy_complex_is_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((2, 2), dtype=complex))
    with pytest.raises(InputError, match=r"s\.npy: logits='complex128': must hold real numbers"):
        read_matrix(tmp_path / "s.npy", field="logits")


def test_read_matrix_npy_truncated(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((100, 10)))
    data = (tmp_path / "s.npy").read_bytes()
    (tmp_path / "s.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"s\.npy'?: not a readable \.npy array.*fully written"):
        read_matrix(tmp_path / "s.npy")


def test_read_matrix_npy_pickled_objects_are_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"s\.npy'?: not a readable \.npy array.*pickle"):
        read_matrix(tmp_path / "s.npy")


def test_read_matrix_npy_that_is_text(write):
    with pytest.raises(InputError, match=r"s\.npy'?: is not a \.npy file"):
        read_matrix(write("s.npy", "0.1,0.9\n"))


def test_read_matrix_npy_that_is_an_npz(tmp_path):
    np.savez(tmp_path / "s.npy", scores=SCORES)
    (tmp_path / "s.npy.npz").rename(tmp_path / "s.npy")
    with pytest.raises(InputError, match=r"is an \.npz archive, not a \.npy array"):
        read_matrix(tmp_path / "s.npy")


# -- .npz ----------------------------------------------------------------------------------------


def test_read_matrix_npz_single_array_of_any_name(tmp_path):
    np.savez(tmp_path / "s.npz", arr_0=SCORES)
    np.testing.assert_array_equal(read_matrix(tmp_path / "s.npz"), SCORES)


def test_read_matrix_npz_picks_the_field(tmp_path):
    np.savez(tmp_path / "s.npz", scores=SCORES, logits=np.log(SCORES) * 2, predictions=SCORES * 0)
    np.testing.assert_allclose(read_matrix(tmp_path / "s.npz", field="logits"), np.log(SCORES) * 2)


def test_read_matrix_npz_falls_back_to_predictions(tmp_path):
    np.savez(tmp_path / "s.npz", predictions=SCORES, ground_truth=np.array([2, 0]))
    np.testing.assert_array_equal(read_matrix(tmp_path / "s.npz"), SCORES)


def test_read_matrix_npz_falls_back_to_probabilities_for_scores(tmp_path):
    np.savez(tmp_path / "s.npz", probabilities=SCORES, ids=np.arange(2))
    np.testing.assert_array_equal(read_matrix(tmp_path / "s.npz"), SCORES)


def test_read_matrix_npz_several_unknown_keys_are_listed(tmp_path):
    np.savez(tmp_path / "s.npz", a=SCORES, b=SCORES)
    with pytest.raises(InputError, match=r"s\.npz: npz keys=\['a', 'b'\]: no array for scores"):
        read_matrix(tmp_path / "s.npz")


def test_read_matrix_npz_never_reads_probabilities_as_logits(tmp_path):
    np.savez(tmp_path / "s.npz", probabilities=SCORES)
    with pytest.raises(InputError, match=r"npz keys=\['probabilities'\]: no array for logits"):
        read_matrix(tmp_path / "s.npz", field="logits")


def test_read_matrix_npz_truncated(tmp_path):
    np.savez_compressed(tmp_path / "s.npz", scores=np.random.default_rng(0).random((200, 50)))
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "s.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"s\.npz'?: not a readable \.npz archive"):
        read_matrix(tmp_path / "s.npz")


def test_read_matrix_npz_corrupt_member_names_the_key(tmp_path):
    np.savez_compressed(tmp_path / "s.npz", scores=np.random.default_rng(0).random((200, 50)))
    data = bytearray((tmp_path / "s.npz").read_bytes())
    data[300:400] = b"x" * 100
    (tmp_path / "s.npz").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"s\.npz: npz key='scores': this array cannot be read"):
        read_matrix(tmp_path / "s.npz")


# -- .parquet ------------------------------------------------------------------------------------


def test_read_matrix_parquet_list_column(tmp_path):
    path = save_parquet(
        tmp_path / "s.parquet", {"row": [0, 1], "scores": pa.array(SCORES.tolist(), pa.list_(pa.float32()))}
    )
    matrix = read_matrix(path)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, SCORES)


def test_read_matrix_parquet_fixed_size_list_column(tmp_path):
    column = pa.FixedSizeListArray.from_arrays(pa.array(SCORES.ravel()), 3)
    np.testing.assert_array_equal(read_matrix(save_parquet(tmp_path / "s.parquet", {"v": column})), SCORES)


def test_read_matrix_parquet_one_column_per_class(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {f"c{i}": SCORES[:, i] for i in range(3)})
    np.testing.assert_array_equal(read_matrix(path), SCORES)


def test_read_matrix_parquet_chooses_the_field_among_list_columns(tmp_path):
    logits = pa.array((SCORES * 10).tolist())
    path = save_parquet(tmp_path / "s.parquet", {"scores": pa.array(SCORES.tolist()), "logits": logits})
    np.testing.assert_allclose(read_matrix(path, field="logits"), SCORES * 10)


def test_read_matrix_parquet_several_list_columns_without_the_field(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"a": pa.array(SCORES.tolist()), "b": pa.array(SCORES.tolist())})
    with pytest.raises(InputError, match=r"s\.parquet: list columns=\['a', 'b'\]: several vector columns"):
        read_matrix(path)


def test_read_matrix_parquet_ragged_vectors_name_the_row(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"scores": [[0.5, 0.5], [0.5, 0.5], [1.0]]})
    with pytest.raises(InputError, match=r"s\.parquet: scores\[2\]='1 values': vectors differ in length: row 0 has 2"):
        read_matrix(path)


def test_read_matrix_parquet_missing_vector_names_the_row(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"scores": [[0.5, 0.5], None]})
    with pytest.raises(InputError, match=r"s\.parquet: scores\[1\]=None: a row has no vector"):
        read_matrix(path)


def test_read_matrix_parquet_missing_value_names_row_and_column(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"scores": [[0.5, 0.5], [0.5, None]]})
    with pytest.raises(InputError, match=r"s\.parquet: scores\[1\]\[1\]=None: a missing value"):
        read_matrix(path)


def test_read_matrix_parquet_text_column_is_named(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"a": [0.5, 0.1], "b": ["x", "y"]})
    with pytest.raises(InputError, match=r"s\.parquet: column='b': is string: expected one numeric column per class"):
        read_matrix(path)


def test_read_matrix_parquet_text_vectors_are_refused(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"scores": [["a", "b"]]})
    with pytest.raises(InputError, match=r"s\.parquet: scores='list<.*string>': vectors must hold numbers"):
        read_matrix(path)


def test_read_matrix_parquet_corrupt(tmp_path):
    path = save_parquet(tmp_path / "s.parquet", {"scores": pa.array(SCORES.tolist())})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(InputError, match=r"s\.parquet'?: not a readable Parquet file"):
        read_matrix(path)


def test_read_matrix_parquet_large_list_column_reshapes_without_copy_per_row(tmp_path):
    values = np.random.default_rng(1).random((5000, 40)).astype(np.float32)
    column = pa.ListArray.from_arrays(
        pa.array(np.arange(0, values.size + 1, 40, dtype=np.int32)), pa.array(values.ravel())
    )
    np.testing.assert_array_equal(read_matrix(save_parquet(tmp_path / "s.parquet", {"scores": column})), values)


# -- .csv ----------------------------------------------------------------------------------------


def test_read_matrix_csv_with_header(write):
    matrix = read_matrix(write("s.csv", "Vanessa,Danaus,Catocala\n0.1,0.2,0.7\n0.5,0.25,0.25\n"))
    np.testing.assert_allclose(matrix, SCORES)
    assert matrix.dtype == np.float64


def test_read_matrix_csv_without_header(write):
    np.testing.assert_allclose(read_matrix(write("s.csv", "0.1,0.2,0.7\n0.5,0.25,0.25\n")), SCORES)


@pytest.mark.parametrize("text", ["0.1,0.2,0.7", "0.1,0.2,0.7\r", "c1,c2,c3\n0.1,0.2,0.7"])
def test_read_matrix_csv_of_one_row_without_a_final_newline(write, text):
    np.testing.assert_allclose(read_matrix(write("s.csv", text)), SCORES[:1])


def test_read_matrix_csv_pandas_integer_header(write):
    np.testing.assert_allclose(read_matrix(write("s.csv", "0,1,2\n0.1,0.2,0.7\n0.5,0.25,0.25\n")), SCORES)


def test_read_matrix_csv_non_numeric_cell_names_line_column_and_value(write):
    path = write("s.csv", "a,b,c\n0.1,0.2,0.7\n0.5,oops,0.25\n")
    with pytest.raises(InputError, match=r"s\.csv:3: column 2 \('b'\)='oops': not a number"):
        read_matrix(path)


def test_read_matrix_csv_empty_cell_names_the_line(write):
    with pytest.raises(InputError, match=r"s\.csv:2: column 3='': an empty cell"):
        read_matrix(write("s.csv", "0.1,0.2,0.7\n0.5,0.25,\n"))


def test_read_matrix_csv_ragged_row(write):
    with pytest.raises(InputError, match=r"s\.csv'?: malformed CSV.*Expected 3 columns, got 2"):
        read_matrix(write("s.csv", "0.1,0.2,0.7\n0.5,0.25\n"))


def test_read_matrix_csv_empty_file(write):
    with pytest.raises(InputError, match=r"s\.csv'?: is empty"):
        read_matrix(write("s.csv", ""))


def test_read_matrix_csv_header_only(write):
    with pytest.raises(InputError, match=r"s\.csv: scores=\(0, 3\): expected a non-empty matrix"):
        read_matrix(write("s.csv", "a,b,c\n"))


def test_read_matrix_csv_binary_garbage(write):
    with pytest.raises(InputError, match=r"s\.csv:1: .*not UTF-8"):
        read_matrix(write("s.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"))


def test_read_matrix_csv_nul_bytes(write):
    with pytest.raises(InputError, match=r"s\.csv:1: .*NUL byte"):
        read_matrix(write("s.csv", b"\x00\x00\x01,\x02\n"))


def test_read_matrix_csv_binary_cell_names_the_line(write):
    with pytest.raises(InputError, match=r"s\.csv:3: column 2=b'\\xff\\xfe': not a number"):
        read_matrix(write("s.csv", b"0.1,0.9\n0.2,0.8\n0.3,\xff\xfe\n"))


# -- any file ------------------------------------------------------------------------------------


def test_read_matrix_unknown_extension_lists_the_supported_ones(write):
    with pytest.raises(InputError, match=r"unsupported extension '\.h5'; supported: \.npy, \.npz, \.parquet, \.csv"):
        read_matrix(write("s.h5", "x"))


def test_read_matrix_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"no such file"):
        read_matrix(tmp_path / "s.npy")


# -- class indices -------------------------------------------------------------------------------


def test_read_class_indices_npy(tmp_path):
    np.save(tmp_path / "y.npy", np.array([2, 0, 1], dtype=np.int32))
    indices = read_class_indices(tmp_path / "y.npy")
    assert indices.dtype == np.int64
    assert indices.tolist() == [2, 0, 1]


def test_read_class_indices_npz_ground_truth_key(tmp_path):
    np.savez(tmp_path / "p.npz", predictions=SCORES, ground_truth=np.array([2, 0]))
    assert read_class_indices(tmp_path / "p.npz").tolist() == [2, 0]


def test_read_class_indices_floats_are_refused(tmp_path):
    np.save(tmp_path / "y.npy", np.array([2.0, 0.0]))
    with pytest.raises(InputError, match=r"y\.npy: ground_truth='float64 array of shape \(2,\)': expected a 1-D"):
        read_class_indices(tmp_path / "y.npy")


def test_read_class_indices_out_of_range_names_the_row(tmp_path):
    np.save(tmp_path / "y.npy", np.array([2, 0, 3]))
    with pytest.raises(InputError, match=r"y\.npy: ground_truth\[2\]=3: not a class index in 0..2"):
        read_class_indices(tmp_path / "y.npy", n_classes=3)


def test_read_class_indices_other_extension(write):
    with pytest.raises(InputError, match=r"unsupported extension '\.csv' for class indices"):
        read_class_indices(write("y.csv", "1\n2\n"))


def test_read_matrix_csv_byte_order_mark_without_header(write):
    np.testing.assert_allclose(read_matrix(write("s.csv", b"\xef\xbb\xbf0.1,0.9\n0.2,0.8\n")), [[0.1, 0.9], [0.2, 0.8]])


def test_a_parquet_file_whose_column_name_is_no_utf8_is_an_input_error(tmp_path):
    """Found by the fuzz test: the reader raised UnicodeDecodeError reading the column names."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({"scores": pa.array(SCORES.tolist(), pa.list_(pa.float32()))}), buffer)
    path = tmp_path / "bad.parquet"
    path.write_bytes(buffer.getvalue().replace(b"scores", b"sc\xaeres"))
    with pytest.raises(InputError, match=rf"file='{re.escape(str(path))}': not a readable Parquet file"):
        read_matrix(path)
