/* responders._native: the event store's SimHash and text normalisation in C.
 *
 * Every post the responder files is fingerprinted: a 64-bit SimHash over its
 * normalised text's character 3-grams, each gram's hash voting on every bit. That is
 * ~300 grams × 64 bits a post; numpy did it with an unpack of the bits and a sparse
 * product at ~40 µs a post (benchmarks/pipeline.py's responder), where this loop
 * counts 8 bits per addition (one byte-wide counter per bit, added as 64-bit words).
 * It gives exactly what that numpy gave; tests/responders/test_events.py compares
 * them on real text. `alnum` is the normalisation's filter (letters and digits only),
 * which a regex substitution did at ~15 µs a post. `probes` lists the block values
 * a batch's fingerprints are looked up by (numpy and Python took ~25 µs a post).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

/* splitmix64's finaliser: spreads a gram's code over all 64 bits. */
static inline uint64_t
mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

#define MULTIPLIER 1000003ULL
#define LOW_BITS 0x0101010101010101ULL

PyDoc_STRVAR(simhashes_doc,
"simhashes(texts: list[str], shingle: int) -> bytes\n\n"
"The 64-bit SimHash of each text (native-endian uint64 each): bit b is set when more\n"
"than half of the text's character `shingle`-grams have bit b set in their hash\n"
"(a polynomial hash of the code points, multiplier 1000003, wrapping at 2**64, then\n"
"splitmix64's finaliser). Every text must have at least `shingle` characters.");

static PyObject *
native_simhashes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "expected simhashes(list, shingle)");
        return NULL;
    }
    PyObject *texts = args[0];
    Py_ssize_t shingle = PyLong_AsSsize_t(args[1]);
    if (shingle == -1 && PyErr_Occurred())
        return NULL;
    if (shingle < 1) {
        PyErr_SetString(PyExc_ValueError, "simhashes(): shingle must be at least 1");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint64_t));
    if (out == NULL)
        return NULL;
    uint64_t *hashes = (uint64_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t t = 0; t < n; t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text) || PyUnicode_GET_LENGTH(text) < shingle) {
            PyErr_Format(PyExc_ValueError,
                         "simhashes(): text %zd is not a str of at least %zd characters", t,
                         shingle);
            Py_DECREF(out);
            return NULL;
        }
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        Py_ssize_t grams = PyUnicode_GET_LENGTH(text) - shingle + 1;
        uint64_t votes[64] = {0};
        /* byte j of lanes[i] counts bit 8j + i; flushed before a byte can overflow */
        uint64_t lanes[8] = {0};
        for (Py_ssize_t g = 0; g < grams; g++) {
            uint64_t h = 0;
            for (Py_ssize_t o = 0; o < shingle; o++)
                h = h * MULTIPLIER + (uint64_t)PyUnicode_READ(kind, data, g + o);
            h = mix(h);
            for (int i = 0; i < 8; i++)
                lanes[i] += (h >> i) & LOW_BITS;
            if ((g + 1) % 255 == 0 || g + 1 == grams) {
                for (int i = 0; i < 8; i++) {
                    for (int j = 0; j < 8; j++)
                        votes[8 * j + i] += (lanes[i] >> (8 * j)) & 0xFF;
                    lanes[i] = 0;
                }
            }
        }
        uint64_t fingerprint = 0;
        for (int b = 0; b < 64; b++)
            if (2 * votes[b] > (uint64_t)grams)
                fingerprint |= 1ULL << b;
        hashes[t] = fingerprint;
    }
    return out;
}


PyDoc_STRVAR(alnum_doc,
"alnum(text: str) -> str\n\n"
"The letters and digits of `text` (the characters for which str.isalnum() is true),\n"
"in order: what re.sub(r\"[\\W_]+\", \"\", text) leaves, without the regex engine.");

static PyObject *
native_alnum(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "expected alnum(str)");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), kept = 0;
    Py_UCS4 widest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISALNUM(c)) {
            kept++;
            widest = c > widest ? c : widest;
        }
    }
    PyObject *out = PyUnicode_New(kept, widest);
    if (out == NULL)
        return NULL;
    int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISALNUM(c))
            PyUnicode_WRITE(out_kind, out_data, j++, c);
    }
    return out;
}

static int
by_value(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

PyDoc_STRVAR(probes_doc,
"probes(fingerprints: list[int], blocks: list[tuple[int, int]]) -> list[str]\n\n"
"Per (shift, width) block, the block's value in each 64-bit fingerprint and every\n"
"value one bit away from one, sorted, each once, written as decimal numbers\n"
"separated by commas (`repository.one_of_listed`).");

static PyObject *
native_probes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "expected probes(list, list)");
        return NULL;
    }
    PyObject *fps = args[0], *blocks = args[1];
    Py_ssize_t n = PyList_GET_SIZE(fps), nb = PyList_GET_SIZE(blocks);
    uint64_t *hashes = PyMem_Malloc((n + 1) * sizeof(uint64_t));
    uint64_t *values = PyMem_Malloc((n * 65 + 1) * sizeof(uint64_t));
    char *text = PyMem_Malloc(n * 65 * 21 + 1); /* 20 digits and a comma a value */
    PyObject *out = PyList_New(nb);
    if (hashes == NULL || values == NULL || text == NULL || out == NULL) {
        if (out != NULL)
            PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        hashes[i] = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(fps, i));
        if (hashes[i] == (uint64_t)-1 && PyErr_Occurred())
            goto fail;
    }
    for (Py_ssize_t b = 0; b < nb; b++) {
        int shift, width;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(blocks, b), "ii", &shift, &width))
            goto fail;
        if (shift < 0 || width < 1 || shift + width > 64) {
            PyErr_SetString(PyExc_ValueError, "probes(): a block lies within 64 bits");
            goto fail;
        }
        uint64_t mask = width == 64 ? ~0ULL : (1ULL << width) - 1;
        Py_ssize_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = hashes[i] >> shift & mask;
            values[m++] = v;
            for (int bit = 0; bit < width; bit++)
                values[m++] = v ^ (1ULL << bit);
        }
        qsort(values, m, sizeof(uint64_t), by_value);
        char *at = text;
        for (Py_ssize_t i = 0; i < m; i++) {
            if (i > 0 && values[i] == values[i - 1])
                continue;
            if (at != text)
                *at++ = ',';
            char digits[21];
            int k = 0;
            uint64_t v = values[i];
            do {
                digits[k++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            while (k)
                *at++ = digits[--k];
        }
        PyObject *listed = PyUnicode_DecodeASCII(text, at - text, NULL);
        if (listed == NULL)
            goto fail;
        PyList_SET_ITEM(out, b, listed);
    }
    PyMem_Free(hashes);
    PyMem_Free(values);
    PyMem_Free(text);
    return out;
fail:
    PyMem_Free(hashes);
    PyMem_Free(values);
    PyMem_Free(text);
    Py_XDECREF(out);
    return NULL;
}

static PyMethodDef native_methods[] = {
    {"simhashes", (PyCFunction)(void (*)(void))native_simhashes, METH_FASTCALL,
     simhashes_doc},
    {"alnum", native_alnum, METH_O, alnum_doc},
    {"probes", (PyCFunction)(void (*)(void))native_probes, METH_FASTCALL, probes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "responders._native",
    .m_doc = "The event store's SimHash and text filter in C (see the source's header).",
    .m_size = 0,
    .m_methods = native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
