/* classifiers._native: the classifier's per-token and per-character loops in C.
 *
 * Segmentation leaves ~150 tokens a post, and the ≥ 10,000 posts/s a core of DESIGN.md
 * leaves ~100 µs a post for everything: no room for Python (or for numpy's many
 * passes and sorts) per token or per character. These functions are those loops:
 *
 * - `chars` and `digit_runs`: the character-level part of cleaning (symbols dropped,
 *   full-width ASCII made half-width, traditional characters noticed) in one pass
 *   over a post's text, and whether it has digits enough for the masking patterns;
 * - `segmenter`, `segmenter_add` and `segment` (in `_segment.c`): jieba's segmentation,
 *   the dropped tokens left out and the ids looked up in the same pass;
 * - `drop` and `lookup`: the same two steps for token lists made elsewhere (the rjieba
 *   and Python jieba backends, `TokenIndex.lookup`): a bit test for one-character
 *   tokens, a set probe for the rest; a dict probe a token;
 * - `known_grams`: the features of tokens new to a model (the token and its
 *   character n-grams) that its vocabulary knows;
 * - `trie` and `trie_find`: the term search of `classifiers.terms` (department rules,
 *   sensitivity lexicon, watchlists);
 * - `sentiment_tokens`, `head_grams` and `head_sums`: the sentiment model's token
 *   blocks (counts, norms, scores and explanation values) in one pass over a batch's
 *   ids, the hashed character n-grams of each post's head and their class sums;
 * - `top_terms`, `top_per_doc` and `sentiment_terms`: the k strongest terms of each
 *   post, selected rather than sorted.
 *
 * Each does exactly what the numpy, Python or library it replaced did, orders and ties
 * included; tests/classifiers/test_native.py, test_segment.py, test_terms.py,
 * test_features.py and test_text.py compare them with that code, and the models' tests
 * with the training-time matrices.
 */
#include "_native.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int
usage(int ok, const char *form)
{
    if (!ok)
        PyErr_Format(PyExc_TypeError, "expected %s", form);
    return ok;
}

int
make_room(void **buf, Py_ssize_t count, Py_ssize_t *room, size_t item)
{
    if (count < *room)
        return 0;
    void *more = PyMem_Realloc(*buf, 2 * (size_t)*room * item);
    if (more == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = more;
    *room *= 2;
    return 0;
}

PyDoc_STRVAR(drop_doc,
"drop(tokens: list[str], chars: bytes, words: set[str] | frozenset[str]) -> list[str]\n\n"
"The tokens, in order, without those of one character marked in `chars` (a bitmap,\n"
"bit c % 8 of byte c // 8 for code point c; 0x110000 bits) and those in `words`.\n"
"Spaces and punctuation are single characters: a bit test each, where probing a set\n"
"of thousands of them took most of the time.");

static PyObject *
native_drop(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3 && PyList_Check(args[0]) && PyBytes_Check(args[1]) &&
                   PyAnySet_Check(args[2]),
               "drop(list, bytes, set)"))
        return NULL;
    PyObject *tokens = args[0], *words = args[2];
    const unsigned char *chars = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    if (PyBytes_GET_SIZE(args[1]) != 0x110000 / 8) {
        PyErr_SetString(PyExc_ValueError, "drop(): the bitmap has a bit per code point");
        return NULL;
    }
    int any_words = PySet_GET_SIZE(words) > 0;
    /* Room for every token, cut to those kept at the end. The size is read each time
       and the token held: a token's own __hash__ or __eq__ could change the list. */
    Py_ssize_t kept = 0;
    PyObject *out = PyList_New(PyList_GET_SIZE(tokens));
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tokens) && kept < PyList_GET_SIZE(out); i++) {
        PyObject *token = PyList_GET_ITEM(tokens, i);
        int dropped;
        Py_INCREF(token);
        if (PyUnicode_Check(token) && PyUnicode_GET_LENGTH(token) == 1) {
            Py_UCS4 c = PyUnicode_READ_CHAR(token, 0);
            dropped = chars[c >> 3] >> (c & 7) & 1;
        }
        else {
            dropped = any_words ? PySet_Contains(words, token) : 0;
        }
        if (dropped < 0) {
            Py_DECREF(token);
            Py_DECREF(out);
            return NULL;
        }
        if (dropped)
            Py_DECREF(token);
        else
            PyList_SET_ITEM(out, kept++, token); /* takes the reference held */
    }
    if (PyList_SetSlice(out, kept, PyList_GET_SIZE(out), NULL) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

int64_t
index_id(PyObject *index, PyObject *words, PyObject *token)
{
    PyObject *id = PyDict_GetItemWithError(index, token); /* borrowed */
    if (id != NULL)
        return PyLong_AsLongLong(id);
    if (PyErr_Occurred())
        return -1;
    int64_t value = PyList_GET_SIZE(words);
    PyObject *new_id = PyLong_FromLongLong(value);
    if (new_id == NULL)
        return -1;
    int failed = PyDict_SetItem(index, token, new_id) < 0 || PyList_Append(words, token) < 0;
    Py_DECREF(new_id);
    return failed ? -1 : value;
}

PyDoc_STRVAR(lookup_doc,
"lookup(docs: Sequence[Sequence[str]], index: dict[str, int], words: list[str])\n"
"    -> tuple[bytes, bytes]\n\n"
"The id of every token of every doc, docs concatenated, and the doc boundaries\n"
"(indptr, len(docs) + 1 entries), both as native int64 bytes. A token not in `index`\n"
"gets the next id, len(words): it is added to `index` and appended to `words`.");

static PyObject *
native_lookup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3 && PyDict_CheckExact(args[1]) && PyList_Check(args[2]),
               "lookup(docs, dict, list)"))
        return NULL;
    PyObject *index = args[1], *words = args[2];
    PyObject *docs = PySequence_Fast(args[0], "lookup(): docs must be a sequence");
    if (docs == NULL)
        return NULL;
    Py_ssize_t ndocs = PySequence_Fast_GET_SIZE(docs);
    PyObject **items = PySequence_Fast_ITEMS(docs);
    PyObject *ids = NULL, *indptr = NULL, *fast = NULL, *result = NULL;

    /* First pass: make every doc a fast sequence and count the tokens. */
    PyObject *lists = PyList_New(ndocs);
    if (lists == NULL)
        goto done;
    Py_ssize_t total = 0;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        fast = PySequence_Fast(items[d], "lookup(): each doc must be a sequence of str");
        if (fast == NULL)
            goto done;
        total += PySequence_Fast_GET_SIZE(fast);
        PyList_SET_ITEM(lists, d, fast); /* steals the reference */
    }
    ids = PyBytes_FromStringAndSize(NULL, total * (Py_ssize_t)sizeof(int64_t));
    indptr = PyBytes_FromStringAndSize(NULL, (ndocs + 1) * (Py_ssize_t)sizeof(int64_t));
    if (ids == NULL || indptr == NULL)
        goto done;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(ids);
    int64_t *bounds = (int64_t *)PyBytes_AS_STRING(indptr);
    Py_ssize_t k = 0;
    bounds[0] = 0;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        PyObject *doc = PyList_GET_ITEM(lists, d);
        Py_ssize_t n = PySequence_Fast_GET_SIZE(doc);
        PyObject **tokens = PySequence_Fast_ITEMS(doc);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *token = tokens[i];
            /* exactly str: a subclass's __hash__ or __eq__ could change the docs */
            if (!PyUnicode_CheckExact(token)) {
                PyErr_Format(PyExc_TypeError, "lookup(): tokens must be str, not %.100s",
                             Py_TYPE(token)->tp_name);
                goto done;
            }
            int64_t value = index_id(index, words, token);
            if (value < 0)
                goto done;
            out[k++] = value;
        }
        bounds[d + 1] = k;
    }
    result = PyTuple_Pack(2, ids, indptr);
done:
    Py_XDECREF(lists);
    Py_XDECREF(ids);
    Py_XDECREF(indptr);
    Py_DECREF(docs);
    return result;
}


/* ------------------------------------------------------------ text characters ---- */

PyDoc_STRVAR(chars_doc,
"chars(text: str, table: bytes) -> tuple[str, bool]\n\n"
"`text` with each character treated as `table` (one byte per code point, 0x110000\n"
"bytes) says: 0 keep, 1 drop, 2 make half-width (U+3000 becomes a space, U+FF01-FF5E\n"
"their ASCII forms), 3 keep and report. Returns the new text (`text` itself when\n"
"nothing changed) and whether any character of kind 3 was met.");

/* The table's codes (`classifiers.text._char_table`). */
enum { KEEP, DROP, HALF_WIDTH, REPORT };

/* The half-width form of a full-width ASCII character or of U+3000. */
static inline Py_UCS4
half_width(Py_UCS4 c)
{
    return c == 0x3000 ? 0x20 : c - 0xFEE0;
}

static PyObject *
native_chars(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 2 && PyUnicode_Check(args[0]) && PyBytes_Check(args[1]),
               "chars(str, bytes)"))
        return NULL;
    PyObject *text = args[0];
    const unsigned char *table = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    if (PyBytes_GET_SIZE(args[1]) != 0x110000) {
        PyErr_SetString(PyExc_ValueError, "chars(): the table has one byte per code point");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), kept = 0;
    Py_UCS4 maxchar = 0;
    int changed = 0, reported = 0;
    /* First pass: what the result holds (its length and widest character). */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        switch (table[c]) {
        case DROP:
            changed = 1;
            continue;
        case HALF_WIDTH:
            changed = 1;
            c = half_width(c);
            break;
        case REPORT:
            reported = 1;
            break;
        }
        kept++;
        if (c > maxchar)
            maxchar = c;
    }
    if (!changed)
        return Py_BuildValue("(OO)", text, reported ? Py_True : Py_False);
    PyObject *out = PyUnicode_New(kept, maxchar);
    if (out == NULL)
        return NULL;
    int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        unsigned char what = table[c];
        if (what == DROP)
            continue;
        PyUnicode_WRITE(out_kind, out_data, k++, what == HALF_WIDTH ? half_width(c) : c);
    }
    return Py_BuildValue("(NO)", out, reported ? Py_True : Py_False);
}


/* ------------------------------------------------------------- term search ------ */

/* A trie of terms over code points, searched from every start position: the terms of
   the department rules, the sensitivity lexicon and the watchlists (hundreds to a
   thousand short Chinese terms) in posts of a few hundred characters. Edges live in
   one open-addressing table keyed by (node, code point); a direct table holds the
   root's edges for the BMP, and a 64-kbit Bloom filter of all edges answers most
   "no such edge" (the common case a character after the first) from the L1 cache. */
typedef struct {
    uint64_t *keys;      /* (node << 21 | code point) + 1; 0 = empty slot */
    int32_t *child;      /* the edge's target node */
    uint64_t mask;       /* slots - 1 */
    int32_t *root;       /* the root's child for each BMP code point, or -1 */
    uint8_t first[0x2000]; /* which BMP code points start a term: what `root` says, in
                              8 KB, so the test run on every character stays in L1 (with
                              `root` alone, 256 KB, the scan took twice as long) */
    uint64_t bloom[1024];
    int32_t *term;       /* per node: the lowest term index ending there, or -1 */
    int32_t *same;       /* per term: the next higher index with the same text, or -1 */
    Py_ssize_t n_nodes, n_terms;
} Trie;

#define TRIE_CAPSULE "classifiers._native.Trie"

static inline int32_t
trie_probe(const Trie *t, uint64_t key)
{
    for (uint64_t i = trie_hash(key) >> 20 & t->mask;; i = (i + 1) & t->mask) {
        if (t->keys[i] == key)
            return t->child[i];
        if (t->keys[i] == 0)
            return -1;
    }
}

static inline int32_t
trie_next(const Trie *t, int32_t node, Py_UCS4 c)
{
    if (node == 0 && c < 0x10000)
        return t->root[c];
    uint64_t key = ((uint64_t)node << 21 | c) + 1, h = trie_hash(key) >> 48;
    if (!(t->bloom[h >> 6] >> (h & 63) & 1))
        return -1;
    return trie_probe(t, key);
}

static void
trie_free(Trie *t)
{
    if (t == NULL)
        return;
    PyMem_Free(t->keys);
    PyMem_Free(t->child);
    PyMem_Free(t->term);
    PyMem_Free(t->same);
    PyMem_Free(t->root);
    PyMem_Free(t);
}

static void
trie_capsule_free(PyObject *capsule)
{
    trie_free(PyCapsule_GetPointer(capsule, TRIE_CAPSULE));
}

PyDoc_STRVAR(trie_doc,
"trie(terms: list[str]) -> capsule\n\n"
"The search structure of `terms` (non-empty str) for `trie_find`.");

static PyObject *
native_trie(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 1 && PyList_Check(args[0]), "trie(list)"))
        return NULL;
    PyObject *terms = args[0];
    Py_ssize_t n_terms = PyList_GET_SIZE(terms), chars = 0;
    for (Py_ssize_t p = 0; p < n_terms; p++) {
        PyObject *term = PyList_GET_ITEM(terms, p);
        if (!PyUnicode_CheckExact(term) || PyUnicode_GET_LENGTH(term) == 0) {
            PyErr_SetString(PyExc_ValueError, "trie(): terms must be non-empty str");
            return NULL;
        }
        chars += PyUnicode_GET_LENGTH(term);
    }
    if (chars >= INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "trie(): too many characters");
        return NULL;
    }
    Trie *t = PyMem_Calloc(1, sizeof(Trie));
    if (t == NULL)
        return PyErr_NoMemory();
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)chars + 16)
        slots <<= 1;
    t->mask = slots - 1;
    t->n_terms = n_terms;
    t->keys = PyMem_Calloc(slots, sizeof(uint64_t));
    t->child = PyMem_Calloc(slots, sizeof(int32_t));
    t->term = PyMem_Malloc((chars + 1) * sizeof(int32_t));
    t->same = PyMem_Malloc((n_terms + 1) * sizeof(int32_t));
    t->root = PyMem_Malloc(0x10000 * sizeof(int32_t));
    if (!t->keys || !t->child || !t->term || !t->same || !t->root) {
        trie_free(t);
        return PyErr_NoMemory();
    }
    memset(t->root, 0xff, 0x10000 * sizeof(int32_t)); /* -1: no edge */
    t->n_nodes = 1;
    t->term[0] = -1;
    for (Py_ssize_t p = 0; p < n_terms; p++) {
        PyObject *term = PyList_GET_ITEM(terms, p);
        int kind = PyUnicode_KIND(term);
        const void *data = PyUnicode_DATA(term);
        Py_ssize_t len = PyUnicode_GET_LENGTH(term);
        int32_t node = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            int32_t next = trie_next(t, node, c);
            if (next < 0) {
                next = (int32_t)t->n_nodes++;
                t->term[next] = -1;
                if (node == 0 && c < 0x10000) {
                    t->root[c] = next;
                    t->first[c >> 3] |= (uint8_t)(1u << (c & 7));
                }
                else {
                    uint64_t key = ((uint64_t)node << 21 | c) + 1, h = trie_hash(key);
                    uint64_t j = h >> 20 & t->mask;
                    while (t->keys[j] != 0)
                        j = (j + 1) & t->mask;
                    t->keys[j] = key;
                    t->child[j] = next;
                    t->bloom[h >> 54] |= 1ULL << (h >> 48 & 63);
                }
            }
            node = next;
        }
        t->same[p] = -1;
        if (t->term[node] < 0) {
            t->term[node] = (int32_t)p;
        }
        else { /* a repeated term: chained after the earlier ones, indexes ascending */
            int32_t q = t->term[node];
            while (t->same[q] >= 0)
                q = t->same[q];
            t->same[q] = (int32_t)p;
        }
    }
    PyObject *capsule = PyCapsule_New(t, TRIE_CAPSULE, trie_capsule_free);
    if (capsule == NULL)
        trie_free(t);
    return capsule;
}

typedef struct {
    int64_t term, start, end;
} Found;

/* Overlapping matches in the order of their ends, the longer first at the same end. */
static int
by_end(const void *x, const void *y)
{
    const Found *a = x, *b = y;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->term > b->term) - (a->term < b->term);
}

static int
push_found(Found **found, Py_ssize_t *count, Py_ssize_t *room, Found f)
{
    if (make_room((void **)found, *count, room, sizeof(Found)) < 0)
        return -1;
    (*found)[(*count)++] = f;
    return 0;
}

PyDoc_STRVAR(trie_find_doc,
"trie_find(trie, text: str, overlapping: bool) -> list[tuple[int, int, int]]\n\n"
"(term index, start, end) of the terms in `text`, in characters. Overlapping: every\n"
"occurrence of every term (repeated terms once each), ordered by end, the longer\n"
"first; otherwise leftmost-longest: from the left, the longest term starting at the\n"
"earliest position where one starts (the lowest index of a repeated term), the\n"
"search going on after its end. As `ahocorasick_rs` orders and chooses them.");

static PyObject *
native_trie_find(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3 && PyUnicode_Check(args[1]), "trie_find(trie, str, bool)"))
        return NULL;
    Trie *t = PyCapsule_GetPointer(args[0], TRIE_CAPSULE);
    int overlapping = PyObject_IsTrue(args[2]);
    if (t == NULL || overlapping < 0)
        return NULL;
    PyObject *text = args[1];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), count = 0, room = 16;
    Found *found = PyMem_Malloc(room * sizeof(Found));
    PyObject *out = NULL;
    if (found == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n;) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x10000 && !(t->first[c >> 3] >> (c & 7) & 1)) { /* most characters */
            i++;
            continue;
        }
        int32_t node = 0, best = -1;
        Py_ssize_t best_end = 0;
        for (Py_ssize_t j = i; j < n; j++) {
            node = trie_next(t, node, PyUnicode_READ(kind, data, j));
            if (node < 0)
                break;
            int32_t p = t->term[node];
            if (p >= 0 && !overlapping) {
                best = p;
                best_end = j + 1;
            }
            for (; p >= 0 && overlapping; p = t->same[p])
                if (push_found(&found, &count, &room, (Found){p, i, j + 1}) < 0)
                    goto done;
        }
        if (overlapping || best < 0) {
            i++;
            continue;
        }
        if (push_found(&found, &count, &room, (Found){best, i, best_end}) < 0)
            goto done;
        i = best_end;
    }
    if (overlapping)
        qsort(found, count, sizeof(Found), by_end);
    out = PyList_New(count);
    for (Py_ssize_t k = 0; out != NULL && k < count; k++) {
        PyObject *item = Py_BuildValue("(nnn)", (Py_ssize_t)found[k].term,
                                       (Py_ssize_t)found[k].start, (Py_ssize_t)found[k].end);
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, k, item);
    }
done:
    PyMem_Free(found);
    return out;
}


/* ------------------------------------------------------------ result bytes ----- */

static void
clear_all(PyObject **parts, int n)
{
    for (int i = 0; i < n; i++)
        Py_CLEAR(parts[i]);
}

/* The kernels' results: `n` bytes objects, each cut to the `used[i]` bytes it holds
   (kept whole when negative), in a tuple. Takes the references and clears `parts`
   whatever happens; NULL on failure. */
static PyObject *
pack_results(PyObject **parts, const Py_ssize_t *used, int n)
{
    PyObject *result = NULL;
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        ok = parts[i] != NULL && (used[i] < 0 || _PyBytes_Resize(&parts[i], used[i]) == 0);
    if (ok && (result = PyTuple_New(n)) != NULL)
        for (int i = 0; i < n; i++) {
            PyTuple_SET_ITEM(result, i, parts[i]);
            parts[i] = NULL;
        }
    clear_all(parts, n);
    return result;
}


/* ------------------------------------------------------------- digit runs ------- */

PyDoc_STRVAR(digit_runs_doc,
"digit_runs(text: str) -> tuple[int, int]\n\n"
"The most ASCII digits of `text` in a row, and the most in a row where a single space\n"
"or hyphen may stand between two digits (how phone, ID and card numbers are written).");

static PyObject *
native_digit_runs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 1 && PyUnicode_Check(args[0]), "digit_runs(str)"))
        return NULL;
    PyObject *text = args[0];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t plain = 0, spaced = 0, run = 0, spaced_run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= '0' && c <= '9') {
            run++;
            spaced_run++;
            if (run > plain)
                plain = run;
            if (spaced_run > spaced)
                spaced = spaced_run;
            continue;
        }
        run = 0;
        /* a separator keeps the spaced run only between two digits */
        int between = (c == ' ' || c == '-') && i > 0 && i + 1 < n &&
                      (Py_UCS4)(PyUnicode_READ(kind, data, i - 1) - '0') <= 9 &&
                      (Py_UCS4)(PyUnicode_READ(kind, data, i + 1) - '0') <= 9;
        if (!between)
            spaced_run = 0;
    }
    return Py_BuildValue("(nn)", plain, spaced);
}


/* ------------------------------------------------------------- head n-grams ----- */

PyDoc_STRVAR(head_grams_doc,
"head_grams(heads: list[str], ngram: int, bits: int) -> (doc, bucket, start, size)\n\n"
"Every character 1..`ngram`-gram of each head (none that holds U+0000), by gram size,\n"
"then head, then position: its head's index, its hash bucket (the code points packed\n"
"21 bits each, times 0x9E3779B97F4A7C15 modulo 2**64, top `bits` bits), its start in\n"
"the head and its size, each as native int64 bytes.");

static PyObject *
native_head_grams(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3 && PyList_Check(args[0]) && PyLong_Check(args[1]) &&
                   PyLong_Check(args[2]),
               "head_grams(list, int, int)"))
        return NULL;
    PyObject *heads = args[0];
    long ngram = PyLong_AsLong(args[1]), bits = PyLong_AsLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (ngram < 1 || ngram > 3 || bits < 1 || bits > 63) {
        PyErr_SetString(PyExc_ValueError, "head_grams(): 1 <= ngram <= 3, 1 <= bits <= 63");
        return NULL;
    }
    Py_ssize_t ndocs = PyList_GET_SIZE(heads), total = 0;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        PyObject *head = PyList_GET_ITEM(heads, d);
        if (!PyUnicode_CheckExact(head)) {
            PyErr_Format(PyExc_TypeError, "head_grams(): heads must be str, not %.100s",
                         Py_TYPE(head)->tp_name);
            return NULL;
        }
        total += PyUnicode_GET_LENGTH(head) * ngram; /* an upper bound */
    }
    /* doc, bucket, start, size: room for every gram, cut to those made */
    PyObject *parts[4];
    for (int i = 0; i < 4; i++)
        parts[i] = PyBytes_FromStringAndSize(NULL, total * (Py_ssize_t)sizeof(int64_t));
    if (!parts[0] || !parts[1] || !parts[2] || !parts[3]) {
        clear_all(parts, 4);
        return NULL;
    }
    int64_t *o_doc = (int64_t *)PyBytes_AS_STRING(parts[0]);
    int64_t *o_bucket = (int64_t *)PyBytes_AS_STRING(parts[1]);
    int64_t *o_start = (int64_t *)PyBytes_AS_STRING(parts[2]);
    int64_t *o_size = (int64_t *)PyBytes_AS_STRING(parts[3]);
    const uint64_t mult = 0x9E3779B97F4A7C15ULL;
    Py_ssize_t k = 0;
    for (long n = 1; n <= ngram; n++) {
        for (Py_ssize_t d = 0; d < ndocs; d++) {
            PyObject *head = PyList_GET_ITEM(heads, d);
            int kind = PyUnicode_KIND(head);
            const void *data = PyUnicode_DATA(head);
            Py_ssize_t len = PyUnicode_GET_LENGTH(head);
            for (Py_ssize_t i = 0; i + n <= len; i++) {
                uint64_t key = 0;
                int nul = 0;
                for (long j = 0; j < n; j++) {
                    Py_UCS4 c = PyUnicode_READ(kind, data, i + j);
                    nul |= c == 0;
                    key = (key << 21) | c;
                }
                if (nul)
                    continue;
                o_doc[k] = d;
                o_bucket[k] = (int64_t)((key * mult) >> (64 - bits));
                o_start[k] = i;
                o_size[k] = n;
                k++;
            }
        }
    }
    Py_ssize_t bytes = k * (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t used[4] = {bytes, bytes, bytes, bytes};
    return pack_results(parts, used, 4);
}


/* ---------------------------------------------------------- features of tokens --- */

/* `prefix` + `text[start:start+len]` as a new str. */
static PyObject *
prefixed(PyObject *prefix, PyObject *text, Py_ssize_t start, Py_ssize_t len)
{
    PyObject *part = PyUnicode_Substring(text, start, start + len);
    if (part == NULL || prefix == NULL || PyUnicode_GET_LENGTH(prefix) == 0)
        return part;
    PyObject *key = PyUnicode_Concat(prefix, part);
    Py_DECREF(part);
    return key;
}

/* Appends vocab[key] to `out` (growing it) when the vocabulary has `key`; consumes key. */
static int
add_known(PyObject *vocab, PyObject *key, int64_t **out, Py_ssize_t *count, Py_ssize_t *room)
{
    if (key == NULL)
        return -1;
    PyObject *id = PyDict_GetItemWithError(vocab, key); /* borrowed */
    Py_DECREF(key);
    if (id == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int64_t value = PyLong_AsLongLong(id);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (make_room((void **)out, *count, room, sizeof(int64_t)) < 0)
        return -1;
    (*out)[(*count)++] = value;
    return 0;
}

PyDoc_STRVAR(known_grams_doc,
"known_grams(tokens: list[str | None], vocab: dict[str, int], whole: str | None,\n"
"            grams: str | None, max_n: int, full: bool) -> (indptr, ids)\n\n"
"The vocabulary ids of each token's features that `vocab` has, in order, repeats\n"
"kept (`classifiers.features.known_grams`): `whole` + the token\n"
"(unless `whole` is None), then `grams` + each character n-gram of the token for\n"
"n = 1 .. max_n, shorter first, left to right (unless `grams` is None), the token\n"
"itself among them only when `full`. A None token has no features. Returns int64\n"
"bytes: indptr (len(tokens) + 1) and the ids.");

static PyObject *
native_known_grams(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 6 && PyList_Check(args[0]) && PyDict_CheckExact(args[1]) &&
                   (args[2] == Py_None || PyUnicode_Check(args[2])) &&
                   (args[3] == Py_None || PyUnicode_Check(args[3])) && PyLong_Check(args[4]),
               "known_grams(list, dict, str | None, str | None, int, bool)"))
        return NULL;
    PyObject *tokens = args[0], *vocab = args[1];
    PyObject *whole = args[2] == Py_None ? NULL : args[2];
    PyObject *grams = args[3] == Py_None ? NULL : args[3];
    Py_ssize_t max_n = PyLong_AsSsize_t(args[4]);
    int full = PyObject_IsTrue(args[5]);
    if ((max_n == -1 && PyErr_Occurred()) || full < 0)
        return NULL;
    /* A copy of the list: looking up a key runs no Python code for exact str keys,
       but a vocabulary with str-subclass keys could. */
    PyObject *items = PySequence_List(tokens);
    if (items == NULL)
        return NULL;
    Py_ssize_t n_tokens = PyList_GET_SIZE(items), count = 0, room = 64;
    PyObject *parts[2] = {
        PyBytes_FromStringAndSize(NULL, (n_tokens + 1) * (Py_ssize_t)sizeof(int64_t)), NULL};
    int64_t *ids = PyMem_Malloc(room * sizeof(int64_t));
    if (parts[0] == NULL || ids == NULL) {
        if (ids == NULL)
            PyErr_NoMemory();
        goto fail;
    }
    int64_t *indptr = (int64_t *)PyBytes_AS_STRING(parts[0]);
    indptr[0] = 0;
    for (Py_ssize_t t = 0; t < n_tokens; t++) {
        PyObject *token = PyList_GET_ITEM(items, t);
        if (token != Py_None) {
            if (!PyUnicode_Check(token)) {
                PyErr_Format(PyExc_TypeError, "known_grams(): tokens must be str or None");
                goto fail;
            }
            Py_ssize_t len = PyUnicode_GET_LENGTH(token);
            if (whole != NULL &&
                add_known(vocab, prefixed(whole, token, 0, len), &ids, &count, &room) < 0)
                goto fail;
            Py_ssize_t top = full ? len : len - 1;
            for (Py_ssize_t k = 1; grams != NULL && k <= max_n && k <= top; k++)
                for (Py_ssize_t i = 0; i + k <= len; i++)
                    if (add_known(vocab, prefixed(grams, token, i, k), &ids, &count, &room) < 0)
                        goto fail;
        }
        indptr[t + 1] = count;
    }
    parts[1] = PyBytes_FromStringAndSize((const char *)ids, count * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(ids);
    Py_DECREF(items);
    const Py_ssize_t used[2] = {-1, -1};
    return pack_results(parts, used, 2);
fail:
    PyMem_Free(ids);
    Py_DECREF(items);
    clear_all(parts, 2);
    return NULL;
}


/* ------------------------------------------------------------------ helpers ------ */

/* The arrays a kernel was given, released together whatever happens. */
typedef struct {
    Py_buffer views[12];
    int n;
} Arrays;

static void
release(Arrays *a)
{
    for (int i = 0; i < a->n; i++)
        PyBuffer_Release(&a->views[i]);
    a->n = 0;
}

/* `obj` as a contiguous array of `ndim` dimensions and numpy kind 'q' (int64),
   'd' (float64) or 'f' (float32); NULL with a TypeError otherwise. */
static Py_buffer *
take(Arrays *a, PyObject *obj, char kind, int ndim, const char *name)
{
    Py_buffer *view = &a->views[a->n];
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    char got = *f == 'l' ? 'q' : *f;
    Py_ssize_t size = kind == 'f' ? 4 : 8;
    if (got != kind || f[1] != '\0' || view->itemsize != size || view->ndim != ndim) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous %d-D array of %s", name,
                     ndim, kind == 'q' ? "int64" : kind == 'd' ? "float64" : "float32");
        PyBuffer_Release(view);
        return NULL;
    }
    a->n++;
    return view;
}

/* Checks that indptr delimits `ndocs` docs within `n_ids` ids and that every id is
   below `limit`; sets *longest to the most ids of a doc. */
static int
check_ids(const char *fn, const int64_t *indptr, Py_ssize_t ndocs, const int64_t *ids,
          Py_ssize_t n_ids, Py_ssize_t limit, Py_ssize_t *longest)
{
    if (ndocs < 0 || ndocs >= INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s(): bad number of docs", fn);
        return -1;
    }
    *longest = 0;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        if (indptr[d] < 0 || indptr[d] > indptr[d + 1] || indptr[d + 1] > n_ids) {
            PyErr_Format(PyExc_ValueError, "%s(): indptr out of range", fn);
            return -1;
        }
        if (indptr[d + 1] - indptr[d] > *longest)
            *longest = indptr[d + 1] - indptr[d];
    }
    for (Py_ssize_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= limit) {
            PyErr_Format(PyExc_IndexError, "%s(): token id out of range", fn);
            return -1;
        }
    }
    return 0;
}

/* Each doc's distinct token ids in order of first occurrence, without sorting or a
   hash: a stamp per id says which doc saw it last and a slot where. */
typedef struct {
    int32_t *stamp, *slot;
} Distinct;

static int
distinct_init(Distinct *s, Py_ssize_t n_tokens)
{
    s->stamp = PyMem_Calloc(n_tokens ? n_tokens : 1, sizeof(int32_t));
    s->slot = PyMem_Malloc((n_tokens ? n_tokens : 1) * sizeof(int32_t));
    return s->stamp && s->slot ? 0 : -1;
}

static void
distinct_free(Distinct *s)
{
    PyMem_Free(s->stamp);
    PyMem_Free(s->slot);
}

/* The slot of token t in doc d; a token new to the doc gets slot *n, and *n grows. */
static inline int32_t
distinct_slot(Distinct *s, int64_t t, Py_ssize_t d, Py_ssize_t *n, int *is_new)
{
    *is_new = s->stamp[t] != (int32_t)(d + 1);
    if (*is_new) {
        s->stamp[t] = (int32_t)(d + 1);
        s->slot[t] = (int32_t)(*n)++;
    }
    return s->slot[t];
}

/* A candidate term: token id (or position), occurrences, weight and sort key. */
typedef struct {
    int64_t id;
    int64_t count;
    double value;
    double key;
} Term;

/* numpy's stable argsort of doc + 1 / (1 + value) orders by that key, then by input
   order (the id, for terms listed by id). */
static int
by_key(const Term *x, const Term *y)
{
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Inserts t into best[0..*filled), kept sorted by_key and at most k long. */
static void
keep_best(Term *best, int64_t *filled, Py_ssize_t k, Term t)
{
    Py_ssize_t j = *filled < k ? (*filled)++ : k;
    while (j > 0 && by_key(&best[j - 1], &t) > 0) {
        if (j < k)
            best[j] = best[j - 1];
        j--;
    }
    if (j < k)
        best[j] = t;
}

/* ---------------------------------------------------------------- top terms ------ */

PyDoc_STRVAR(top_terms_doc,
"top_terms(ids, indptr, norms, rows, cols, sign, k, share, words)\n"
"    -> list[list[tuple[str, float]]]\n\n"
"`classifiers.models.linear.ScoredBatch.top_terms` (see there): per doc i, up to k\n"
"(word, weight) of the tokens whose row value in column cols[i], times\n"
"sign[i] / norms[i], is positive and at least `share` of the doc's largest, weighted\n"
"by how often the token occurs, strongest first. ids, indptr and cols are int64,\n"
"norms and sign float64, rows a 2-D float32 table.");

static PyObject *
native_top_terms(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 9 && PyList_Check(args[8]),
               "top_terms(ids, indptr, norms, rows, cols, sign, k, share, list)"))
        return NULL;
    Py_ssize_t k = PyLong_AsSsize_t(args[6]);
    double share = PyFloat_AsDouble(args[7]);
    PyObject *words = args[8];
    if (PyErr_Occurred())
        return NULL;
    k = k < 0 ? 0 : k;
    Arrays a = {.n = 0};
    Distinct seen = {NULL, NULL};
    PyObject *out = NULL;
    Term *terms = NULL, *best = NULL;
    Py_buffer *v_ids = take(&a, args[0], 'q', 1, "ids");
    Py_buffer *v_ptr = v_ids ? take(&a, args[1], 'q', 1, "indptr") : NULL;
    Py_buffer *v_norms = v_ptr ? take(&a, args[2], 'd', 1, "norms") : NULL;
    Py_buffer *v_rows = v_norms ? take(&a, args[3], 'f', 2, "rows") : NULL;
    Py_buffer *v_cols = v_rows ? take(&a, args[4], 'q', 1, "cols") : NULL;
    Py_buffer *v_sign = v_cols ? take(&a, args[5], 'd', 1, "sign") : NULL;
    if (v_sign == NULL)
        goto done;
    const int64_t *ids = v_ids->buf, *indptr = v_ptr->buf, *cols = v_cols->buf;
    const double *norms = v_norms->buf, *sign = v_sign->buf;
    const float *rows = v_rows->buf;
    Py_ssize_t n_ids = v_ids->shape[0], ndocs = v_ptr->shape[0] - 1;
    Py_ssize_t n_rows = v_rows->shape[0], width = v_rows->shape[1], longest;
    Py_ssize_t limit = Py_MIN(n_rows, PyList_GET_SIZE(words));
    if (check_ids("top_terms", indptr, ndocs, ids, n_ids, limit, &longest) < 0)
        goto done;
    if (v_norms->shape[0] < ndocs || v_cols->shape[0] < ndocs || v_sign->shape[0] < ndocs) {
        PyErr_SetString(PyExc_ValueError, "top_terms(): arrays of different lengths");
        goto done;
    }
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        if (cols[d] < 0 || cols[d] >= width) {
            PyErr_SetString(PyExc_IndexError, "top_terms(): column out of range");
            goto done;
        }
    }
    terms = PyMem_Malloc((longest ? longest : 1) * sizeof(Term));
    best = PyMem_Malloc((k ? k : 1) * sizeof(Term));
    out = PyList_New(ndocs);
    if (terms == NULL || best == NULL || out == NULL || distinct_init(&seen, n_rows) < 0) {
        PyErr_NoMemory();
        Py_CLEAR(out);
        goto done;
    }
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        double scale = sign[d] / norms[d];
        int64_t col = cols[d];
        double top = 0.0;
        for (int64_t i = indptr[d]; i < indptr[d + 1]; i++) {
            double v = (double)rows[ids[i] * width + col] * scale;
            if (i == indptr[d] || v > top)
                top = v;
        }
        /* one weight per token: its occurrences add up */
        double floor = share * top;
        Py_ssize_t n = 0;
        for (int64_t i = indptr[d]; i < indptr[d + 1]; i++) {
            double v = (double)rows[ids[i] * width + col] * scale;
            if (!(v > 0 && v >= floor))
                continue;
            int is_new;
            int32_t j = distinct_slot(&seen, ids[i], d, &n, &is_new);
            if (is_new)
                terms[j] = (Term){.id = ids[i], .count = 0, .value = v};
            terms[j].count++;
        }
        int64_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Term t = terms[i];
            t.value *= (double)t.count;
            t.key = (double)d + 1.0 / (1.0 + t.value);
            keep_best(best, &m, k, t);
        }
        PyObject *list = PyList_New(m);
        if (list == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, d, list);
        for (Py_ssize_t i = 0; i < m; i++) {
            PyObject *word = PyList_GET_ITEM(words, best[i].id);
            PyObject *pair = Py_BuildValue("(Od)", word, best[i].value);
            if (pair == NULL) {
                Py_CLEAR(out);
                goto done;
            }
            PyList_SET_ITEM(list, i, pair);
        }
    }
done:
    PyMem_Free(terms);
    PyMem_Free(best);
    distinct_free(&seen);
    release(&a);
    return out;
}

/* ------------------------------------------------------- sentiment token part ---- */

/* Letters and digits of a str, as sum(map(str.isalnum, s)) counts them. */
static Py_ssize_t
alnum_count(PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), count = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        count += Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, i)) != 0;
    return count;
}

PyDoc_STRVAR(sentiment_tokens_doc,
"sentiment_tokens(ids, indptr, heads, table, max_tokens) -> (scores, doc, token, explain)\n\n"
"The token blocks of `classifiers.models.sentiment` for a batch (see there). `table`\n"
"is the model's token table, a row per token id (per block 3 class scores, then per\n"
"block the squared-idf norm term, per block 3 explanation scores, then the token's\n"
"letter/digit count and whether it may be shown), row-major. Block 0 counts the\n"
"head's tokens (those starting before the doc's head, `heads[i]`, has used up its\n"
"letters and digits), the others the first `max_tokens` tokens; a token seen c times\n"
"weighs 1 + ln c, and each block is divided by its norm.\n"
"Returns the float64 bytes of scores (doc, block, class) and, per distinct shown\n"
"token of each doc (first occurrences in order), its doc and id (int64 bytes) and\n"
"its explanation value towards each class, blocks summed (float64 bytes, 3 a token).");

/* The model's three blocks: head words (head counts), words and subwords (body). */
#define NB 3

static PyObject *
native_sentiment_tokens(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 5 && PyList_Check(args[2]),
               "sentiment_tokens(ids, indptr, list, table, max_tokens)"))
        return NULL;
    PyObject *heads = args[2];
    Py_ssize_t max_tokens = PyLong_AsSsize_t(args[4]);
    if (max_tokens == -1 && PyErr_Occurred())
        return NULL;
    Arrays a = {.n = 0};
    Distinct seen = {NULL, NULL};
    PyObject *result = NULL, *scores = NULL, *e_doc = NULL, *e_tok = NULL, *e_val = NULL;
    int64_t *first = NULL;
    double *xh = NULL, *xb = NULL;
    Py_buffer *v_ids = take(&a, args[0], 'q', 1, "ids");
    Py_buffer *v_ptr = v_ids ? take(&a, args[1], 'q', 1, "indptr") : NULL;
    Py_buffer *v_tab = v_ptr ? take(&a, args[3], 'd', 2, "table") : NULL;
    if (v_tab == NULL)
        goto done;
    const int64_t *ids = v_ids->buf, *indptr = v_ptr->buf;
    const double *tab = v_tab->buf;
    Py_ssize_t n_ids = v_ids->shape[0], ndocs = v_ptr->shape[0] - 1;
    Py_ssize_t n_rows = v_tab->shape[0], width = v_tab->shape[1], longest;
    const Py_ssize_t norms = 3 * NB, explain = 4 * NB, core = width - 2, shown = width - 1;
    if (width != 7 * NB + 2 || ndocs != PyList_GET_SIZE(heads)) {
        PyErr_SetString(PyExc_ValueError, "sentiment_tokens(): table or heads do not fit");
        goto done;
    }
    if (check_ids("sentiment_tokens", indptr, ndocs, ids, n_ids, n_rows, &longest) < 0)
        goto done;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        if (!PyUnicode_Check(PyList_GET_ITEM(heads, d))) {
            PyErr_SetString(PyExc_TypeError, "sentiment_tokens(): heads must be str");
            goto done;
        }
    }
    scores = PyBytes_FromStringAndSize(NULL, ndocs * NB * 3 * (Py_ssize_t)sizeof(double));
    e_doc = PyBytes_FromStringAndSize(NULL, n_ids * (Py_ssize_t)sizeof(int64_t));
    e_tok = PyBytes_FromStringAndSize(NULL, n_ids * (Py_ssize_t)sizeof(int64_t));
    e_val = PyBytes_FromStringAndSize(NULL, n_ids * 3 * (Py_ssize_t)sizeof(double));
    first = PyMem_Malloc((longest ? longest : 1) * sizeof(int64_t));
    xh = PyMem_Malloc((longest ? longest : 1) * sizeof(double));
    xb = PyMem_Malloc((longest ? longest : 1) * sizeof(double));
    if (!scores || !e_doc || !e_tok || !e_val || !first || !xh || !xb ||
        distinct_init(&seen, n_rows) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    double *s = (double *)PyBytes_AS_STRING(scores);
    int64_t *out_doc = (int64_t *)PyBytes_AS_STRING(e_doc);
    int64_t *out_tok = (int64_t *)PyBytes_AS_STRING(e_tok);
    double *out_val = (double *)PyBytes_AS_STRING(e_val);
    Py_ssize_t m = 0;
#define TAB(col, t) tab[(t) * width + (col)]
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        double budget = (double)alnum_count(PyList_GET_ITEM(heads, d));
        /* distinct tokens in order of first occurrence, with head and body counts */
        Py_ssize_t n = 0;
        double before = 0.0;
        for (int64_t i = indptr[d]; i < indptr[d + 1]; i++) {
            int64_t t = ids[i];
            int in_head = before < budget, in_body = i - indptr[d] < max_tokens, is_new;
            before += TAB(core, t);
            if (!in_head && !in_body)
                continue;
            int32_t j = distinct_slot(&seen, t, d, &n, &is_new);
            if (is_new) {
                first[j] = t;
                xh[j] = xb[j] = 0.0;
            }
            xh[j] += in_head;
            xb[j] += in_body;
        }
        /* weights 1 + ln c; per block the norm and the class scores */
        double norm[NB] = {0.0};
        double *sd = s + d * NB * 3;
        for (Py_ssize_t j = 0; j < NB * 3; j++)
            sd[j] = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t t = first[i];
            xh[i] = xh[i] > 0 ? 1.0 + log(xh[i]) : 0.0;
            xb[i] = xb[i] > 0 ? 1.0 + log(xb[i]) : 0.0;
            for (Py_ssize_t k = 0; k < NB; k++) {
                double x = k == 0 ? xh[i] : xb[i];
                norm[k] += x * x * TAB(norms + k, t);
                for (int j = 0; j < 3; j++)
                    sd[k * 3 + j] += x * TAB(3 * k + j, t);
            }
        }
        for (Py_ssize_t k = 0; k < NB; k++) {
            norm[k] = sqrt(norm[k]);
            if (norm[k] == 0)
                norm[k] = 1.0;
            for (int j = 0; j < 3; j++)
                sd[k * 3 + j] /= norm[k];
        }
        /* explanation values: the body blocks, then the head block added */
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t t = first[i];
            if (!(TAB(shown, t) > 0) || xb[i] == 0.0)
                continue;
            out_doc[m] = d;
            out_tok[m] = t;
            for (int c = 0; c < 3; c++) {
                double v = xb[i] / norm[1] * TAB(explain + 3 + c, t);
                for (Py_ssize_t k = 2; k < NB; k++)
                    v += xb[i] / norm[k] * TAB(explain + 3 * k + c, t);
                out_val[3 * m + c] = v + xh[i] / norm[0] * TAB(explain + c, t);
            }
            m++;
        }
    }
#undef TAB
    PyObject *parts[4] = {scores, e_doc, e_tok, e_val};
    const Py_ssize_t used[4] = {-1, m * (Py_ssize_t)sizeof(int64_t),
                                m * (Py_ssize_t)sizeof(int64_t),
                                m * 3 * (Py_ssize_t)sizeof(double)};
    scores = e_doc = e_tok = e_val = NULL; /* taken by pack_results */
    result = pack_results(parts, used, 4);
done:
    Py_XDECREF(scores);
    Py_XDECREF(e_doc);
    Py_XDECREF(e_tok);
    Py_XDECREF(e_val);
    PyMem_Free(first);
    PyMem_Free(xh);
    PyMem_Free(xb);
    distinct_free(&seen);
    release(&a);
    return result;
}

/* ------------------------------------------------------------- top per doc ------ */

PyDoc_STRVAR(top_per_doc_doc,
"top_per_doc(doc, value, k) -> bytes\n\n"
"`classifiers.features.top_per_doc`: the positions (int64 bytes) of the k entries of\n"
"each doc that come first when ordered by doc + 1 / (1 + value), ties in input\n"
"order, as numpy's stable argsort orders them; by doc, best first. doc is int64\n"
"(>= 0), value float64.");

static PyObject *
native_top_per_doc(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3, "top_per_doc(doc, value, k)"))
        return NULL;
    Py_ssize_t k = PyLong_AsSsize_t(args[2]);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    k = k < 0 ? 0 : k;
    Arrays a = {.n = 0};
    PyObject *out = NULL;
    Term *best = NULL;
    int64_t *filled = NULL;
    Py_buffer *v_doc = take(&a, args[0], 'q', 1, "doc");
    Py_buffer *v_val = v_doc ? take(&a, args[1], 'd', 1, "value") : NULL;
    if (v_val == NULL)
        goto done;
    const int64_t *doc = v_doc->buf;
    const double *value = v_val->buf;
    Py_ssize_t n = v_doc->shape[0];
    if (v_val->shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "top_per_doc(): doc and value differ in length");
        goto done;
    }
    int64_t ndocs = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (doc[i] < 0 || doc[i] >= PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Term) / (k ? k : 1)) {
            PyErr_SetString(PyExc_ValueError, "top_per_doc(): doc out of range");
            goto done;
        }
        ndocs = Py_MAX(ndocs, doc[i] + 1);
    }
    /* per doc its k best so far, sorted; Term.id holds the position */
    best = PyMem_Malloc((ndocs && k ? ndocs * k : 1) * sizeof(Term));
    filled = PyMem_Calloc(ndocs ? ndocs : 1, sizeof(int64_t));
    if (best == NULL || filled == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n && k; i++) {
        Term t = {.id = i, .count = 0, .value = value[i]};
        t.key = (double)doc[i] + 1.0 / (1.0 + value[i]);
        keep_best(best + doc[i] * k, &filled[doc[i]], k, t);
    }
    Py_ssize_t total = 0;
    for (int64_t d = 0; d < ndocs; d++)
        total += filled[d];
    out = PyBytes_FromStringAndSize(NULL, total * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL)
        goto done;
    int64_t *pos = (int64_t *)PyBytes_AS_STRING(out);
    for (int64_t d = 0; d < ndocs; d++)
        for (int64_t j = 0; j < filled[d]; j++)
            *pos++ = best[d * k + j].id;
done:
    PyMem_Free(best);
    PyMem_Free(filled);
    release(&a);
    return out;
}

/* ------------------------------------------------------- sentiment head sums ---- */

PyDoc_STRVAR(head_sums_doc,
"head_sums(doc, bucket, table, ndocs) -> (sums, norm)\n\n"
"Per head (`ndocs`), the sums of the first three columns of table[bucket] over its\n"
"n-grams (ndocs x 3 float64 bytes) and the square root of the sum of the fourth, 1.0\n"
"where that is 0 (ndocs float64 bytes): numpy's bincount with weights and sqrt, the\n"
"same sums in the same order, without the gathered rows (189 a post, megabytes a\n"
"batch) in between.");

static PyObject *
native_head_sums(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 4, "head_sums(doc, bucket, table, ndocs)"))
        return NULL;
    Py_ssize_t ndocs = PyLong_AsSsize_t(args[3]);
    if (ndocs == -1 && PyErr_Occurred())
        return NULL;
    Arrays a = {.n = 0};
    PyObject *parts[2] = {NULL, NULL}, *result = NULL;
    Py_buffer *v_doc = take(&a, args[0], 'q', 1, "doc");
    Py_buffer *v_bucket = v_doc ? take(&a, args[1], 'q', 1, "bucket") : NULL;
    Py_buffer *v_table = v_bucket ? take(&a, args[2], 'd', 2, "table") : NULL;
    if (v_table == NULL)
        goto done;
    const int64_t *doc = v_doc->buf, *bucket = v_bucket->buf;
    const double *table = v_table->buf;
    Py_ssize_t n = v_doc->shape[0], rows = v_table->shape[0];
    if (ndocs < 0 || v_bucket->shape[0] != n || v_table->shape[1] != 4) {
        PyErr_SetString(PyExc_ValueError, "head_sums(): arrays that do not fit");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (doc[i] < 0 || doc[i] >= ndocs || bucket[i] < 0 || bucket[i] >= rows) {
            PyErr_SetString(PyExc_IndexError, "head_sums(): doc or bucket out of range");
            goto done;
        }
    parts[0] = PyBytes_FromStringAndSize(NULL, ndocs * 3 * (Py_ssize_t)sizeof(double));
    parts[1] = PyBytes_FromStringAndSize(NULL, ndocs * (Py_ssize_t)sizeof(double));
    if (parts[0] == NULL || parts[1] == NULL)
        goto done;
    double *sums = (double *)PyBytes_AS_STRING(parts[0]);
    double *norm = (double *)PyBytes_AS_STRING(parts[1]);
    memset(sums, 0, ndocs * 3 * sizeof(double));
    memset(norm, 0, ndocs * sizeof(double));
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 < n)
            __builtin_prefetch(table + 4 * bucket[i + 8]); /* rows are cache misses */
        const double *row = table + 4 * bucket[i];
        for (int j = 0; j < 3; j++)
            sums[3 * doc[i] + j] += row[j];
        norm[doc[i]] += row[3];
    }
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        norm[d] = sqrt(norm[d]);
        if (norm[d] == 0)
            norm[d] = 1.0;
    }
    const Py_ssize_t used[2] = {-1, -1};
    result = pack_results(parts, used, 2);
done:
    clear_all(parts, 2);
    release(&a);
    return result;
}


/* ------------------------------------------------------- sentiment explanation -- */

PyDoc_STRVAR(sentiment_terms_doc,
"sentiment_terms(doc, token, explain, cls, head_doc, head_bucket, head_table, head_norm,\n"
"                head_start, head_size, directions, k, words, heads, stop)\n"
"    -> list[list[str]]\n\n"
"`SentimentModel._terms`: per post, up to `k` terms that pushed most toward its class\n"
"cls[post]. Candidates: the 2k tokens of the post (doc, token id, explain[:, cls])\n"
"and the k head n-grams longer than a character (head_table[bucket, :3] .\n"
"directions[cls] / head_norm[post]) of highest positive value, each chosen as `top_per_doc` chooses;\n"
"then the best 3k of both (tokens first on ties), taken in order unless an n-gram is\n"
"in `stop` or has no letter or digit, or a term is inside a chosen one or holds one.");

/* A post's terms: its token candidates `tok` and n-gram candidates `head` (each as
   top_per_doc ordered them, id = array position) merged as top_per_doc would merge
   the two lists, tokens first, then taken in that order (see the doc above). */
static PyObject *
choose_terms(const Term *tok, int64_t n_tok, const Term *head, int64_t n_head, Py_ssize_t k,
             const int64_t *token, PyObject *words, PyObject *text,
             const int64_t *start, const int64_t *size, PyObject *stop, Term *merged)
{
    int64_t filled = 0;
    for (int64_t i = 0; i < n_tok + n_head; i++) {
        Term t = i < n_tok ? tok[i] : head[i - n_tok];
        t.count = t.id;  /* the array position; the id orders tokens before n-grams */
        t.id = i;
        keep_best(merged, &filled, 3 * k, t);
    }
    PyObject *chosen = PyList_New(0);
    for (int64_t j = 0; chosen != NULL && j < filled && PyList_GET_SIZE(chosen) < k; j++) {
        int64_t at = merged[j].count;
        PyObject *term;
        if (merged[j].id < n_tok) {
            term = PyList_GET_ITEM(words, token[at]);
            Py_INCREF(term);
        }
        else {
            term = PyUnicode_Substring(text, start[at], start[at] + size[at]);
            if (term == NULL)
                goto fail;
            int skip = PySet_Contains(stop, term);
            if (skip == 0) { /* no letter or digit: nothing to read */
                skip = 1;
                for (Py_ssize_t c = 0; c < PyUnicode_GET_LENGTH(term) && skip; c++)
                    skip = !Py_UNICODE_ISALNUM(PyUnicode_READ_CHAR(term, c));
            }
            if (skip != 0) {
                Py_DECREF(term);
                if (skip < 0)
                    goto fail;
                continue;
            }
        }
        int overlaps = 0;
        for (Py_ssize_t c = 0; c < PyList_GET_SIZE(chosen) && !overlaps; c++) {
            PyObject *other = PyList_GET_ITEM(chosen, c);
            overlaps = PyUnicode_Contains(other, term);
            if (overlaps == 0)
                overlaps = PyUnicode_Contains(term, other);
        }
        if (overlaps == 0 && PyList_Append(chosen, term) < 0)
            overlaps = -1;
        Py_DECREF(term);
        if (overlaps < 0)
            goto fail;
    }
    return chosen;
fail:
    Py_XDECREF(chosen);
    return NULL;
}

static PyObject *
native_sentiment_terms(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 15 && PyList_Check(args[12]) && PyList_Check(args[13]) &&
                   PyAnySet_Check(args[14]),
               "sentiment_terms(doc, token, explain, cls, head_doc, head_bucket, head_table, "
               "head_norm, head_start, head_size, directions, k, list, list, set)"))
        return NULL;
    Py_ssize_t k = PyLong_AsSsize_t(args[11]);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    PyObject *words = args[12], *heads = args[13], *stop = args[14], *out = NULL;
    Arrays a = {.n = 0};
    Term *tok = NULL, *head = NULL, *merged = NULL;
    int64_t *n_tok = NULL, *n_head = NULL;
    const char kinds[] = "qqdqqqddqqd";
    const int dims[] = {1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 2};
    static const char *names[] = {"doc",        "token",      "explain",   "cls",
                                  "head_doc",   "head_bucket", "head_table", "head_norm",
                                  "head_start", "head_size",  "directions"};
    Py_buffer *v[11];
    for (int i = 0; i < 11; i++)
        if ((v[i] = take(&a, args[i], kinds[i], dims[i], names[i])) == NULL)
            goto done;
    const int64_t *doc = v[0]->buf, *token = v[1]->buf, *cls = v[3]->buf;
    const int64_t *h_doc = v[4]->buf, *bucket = v[5]->buf, *h_start = v[8]->buf;
    const int64_t *h_size = v[9]->buf;
    const double *explain = v[2]->buf, *table = v[6]->buf, *norm = v[7]->buf;
    const double *dir = v[10]->buf;
    Py_ssize_t n = v[0]->shape[0], m = v[4]->shape[0], ndocs = PyList_GET_SIZE(heads);
    Py_ssize_t rows = v[6]->shape[0];
    if (k < 1 || v[1]->shape[0] != n || v[2]->shape[0] != n || v[2]->shape[1] != 3 ||
        v[3]->shape[0] != ndocs || v[5]->shape[0] != m || v[6]->shape[1] != 4 ||
        v[7]->shape[0] != ndocs || v[8]->shape[0] != m || v[9]->shape[0] != m ||
        v[10]->shape[0] != 3 || v[10]->shape[1] != 3) {
        PyErr_SetString(PyExc_ValueError, "sentiment_terms(): arrays that do not fit");
        goto done;
    }
    for (Py_ssize_t d = 0; d < ndocs; d++)
        if (cls[d] < 0 || cls[d] > 2 || !PyUnicode_Check(PyList_GET_ITEM(heads, d))) {
            PyErr_SetString(PyExc_ValueError, "sentiment_terms(): bad class or head");
            goto done;
        }
    for (Py_ssize_t i = 0; i < n; i++)
        if (doc[i] < 0 || doc[i] >= ndocs || token[i] < 0 ||
            token[i] >= PyList_GET_SIZE(words)) {
            PyErr_SetString(PyExc_IndexError, "sentiment_terms(): doc or token out of range");
            goto done;
        }
    for (Py_ssize_t j = 0; j < m; j++)
        if (h_doc[j] < 0 || h_doc[j] >= ndocs || bucket[j] < 0 || bucket[j] >= rows ||
            h_start[j] < 0 || h_size[j] < 1 ||
            h_start[j] + h_size[j] > PyUnicode_GET_LENGTH(PyList_GET_ITEM(heads, h_doc[j]))) {
            PyErr_SetString(PyExc_IndexError, "sentiment_terms(): n-gram out of range");
            goto done;
        }
    tok = PyMem_Malloc((ndocs ? ndocs : 1) * 2 * k * sizeof(Term));
    head = PyMem_Malloc((ndocs ? ndocs : 1) * k * sizeof(Term));
    merged = PyMem_Malloc(3 * k * sizeof(Term));
    n_tok = PyMem_Calloc(ndocs ? ndocs : 1, sizeof(int64_t));
    n_head = PyMem_Calloc(ndocs ? ndocs : 1, sizeof(int64_t));
    if (!tok || !head || !merged || !n_tok || !n_head) {
        PyErr_NoMemory();
        goto done;
    }
    /* each post's best tokens and n-grams, in array order as top_per_doc takes them */
    for (Py_ssize_t i = 0; i < n; i++) {
        double value = explain[3 * i + cls[doc[i]]];
        if (value > 0) {
            Term t = {.id = i, .value = value, .key = (double)doc[i] + 1.0 / (1.0 + value)};
            keep_best(tok + doc[i] * 2 * k, &n_tok[doc[i]], 2 * k, t);
        }
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        if (h_size[j] < 2)
            continue;
        if (j + 8 < m)
            __builtin_prefetch(table + 4 * bucket[j + 8]); /* rows are cache misses */
        const double *along = dir + 3 * cls[h_doc[j]], *row = table + 4 * bucket[j];
        double value = (row[0] * along[0] + row[1] * along[1] + row[2] * along[2]) /
                       norm[h_doc[j]];
        if (value > 0) {
            Term t = {.id = j, .value = value, .key = (double)h_doc[j] + 1.0 / (1.0 + value)};
            keep_best(head + h_doc[j] * k, &n_head[h_doc[j]], k, t);
        }
    }
    out = PyList_New(ndocs);
    for (Py_ssize_t d = 0; out != NULL && d < ndocs; d++) {
        PyObject *chosen =
            choose_terms(tok + d * 2 * k, n_tok[d], head + d * k, n_head[d], k, token, words,
                         PyList_GET_ITEM(heads, d), h_start, h_size, stop, merged);
        if (chosen == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, d, chosen);
    }
done:
    PyMem_Free(tok);
    PyMem_Free(head);
    PyMem_Free(merged);
    PyMem_Free(n_tok);
    PyMem_Free(n_head);
    release(&a);
    return out;
}

/* ------------------------------------------------------------------ module ------- */

static PyMethodDef native_methods[] = {
    {"drop", (PyCFunction)(void (*)(void))native_drop, METH_FASTCALL, drop_doc},
    {"lookup", (PyCFunction)(void (*)(void))native_lookup, METH_FASTCALL, lookup_doc},
    {"known_grams", (PyCFunction)(void (*)(void))native_known_grams, METH_FASTCALL,
     known_grams_doc},
    {"chars", (PyCFunction)(void (*)(void))native_chars, METH_FASTCALL, chars_doc},
    {"digit_runs", (PyCFunction)(void (*)(void))native_digit_runs, METH_FASTCALL,
     digit_runs_doc},
    {"head_grams", (PyCFunction)(void (*)(void))native_head_grams, METH_FASTCALL,
     head_grams_doc},
    {"head_sums", (PyCFunction)(void (*)(void))native_head_sums, METH_FASTCALL, head_sums_doc},
    {"trie", (PyCFunction)(void (*)(void))native_trie, METH_FASTCALL, trie_doc},
    {"trie_find", (PyCFunction)(void (*)(void))native_trie_find, METH_FASTCALL, trie_find_doc},
    {"top_terms", (PyCFunction)(void (*)(void))native_top_terms, METH_FASTCALL,
     top_terms_doc},
    {"sentiment_tokens", (PyCFunction)(void (*)(void))native_sentiment_tokens, METH_FASTCALL,
     sentiment_tokens_doc},
    {"top_per_doc", (PyCFunction)(void (*)(void))native_top_per_doc, METH_FASTCALL,
     top_per_doc_doc},
    {"sentiment_terms", (PyCFunction)(void (*)(void))native_sentiment_terms, METH_FASTCALL,
     sentiment_terms_doc},
    {"segmenter", (PyCFunction)(void (*)(void))native_segmenter, METH_FASTCALL, segmenter_doc},
    {"segmenter_add", (PyCFunction)(void (*)(void))native_segmenter_add, METH_FASTCALL,
     segmenter_add_doc},
    {"segment", (PyCFunction)(void (*)(void))native_segment, METH_FASTCALL, segment_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "classifiers._native",
    .m_doc = "The classifier's per-token loops in C (see the source's header).",
    .m_size = 0,
    .m_methods = native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
