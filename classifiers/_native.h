/* classifiers._native: what its two source files share (_native.c, _segment.c). */
#ifndef CLASSIFIERS_NATIVE_H
#define CLASSIFIERS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* False, with a TypeError naming the call's form, unless `ok`. */
int usage(int ok, const char *form);

/* Doubles the room of a PyMem buffer of `item`-byte elements once `count` fills it. */
int make_room(void **buf, Py_ssize_t count, Py_ssize_t *room, size_t item);

/* The id of `token` (exactly a str) in a token index: `index[token]`, or, for a token
   not in it, the next id len(words), added to `index` and appended to `words`.
   -1 with an exception set on failure. */
int64_t index_id(PyObject *index, PyObject *words, PyObject *token);

/* The hash of a trie edge's key, (node << 21 | code point) + 1. */
static inline uint64_t
trie_hash(uint64_t key)
{
    return key * 0x9E3779B97F4A7C15ULL;
}

/* _segment.c: jieba's segmentation. */
extern const char segmenter_doc[], segmenter_add_doc[], segment_doc[];
PyObject *native_segmenter(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_segmenter_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_segment(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
