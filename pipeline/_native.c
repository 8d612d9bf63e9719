/* pipeline._native: Kafka's key hash in C.
 *
 * Every keyed record a stage publishes goes to partition murmur2(key) & 0x7fffffff
 * modulo the partition count, as the Java client and kafka-python's default
 * partitioner place it. kafka-python computes the hash in Python, byte by byte; a
 * word-at-a-time Python version still cost ~10 µs of a stage's CPU a record.
 * tests/pipeline/bus/test_partitioner.py compares it with kafka-python's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

PyDoc_STRVAR(murmur2_doc,
"murmur2(data: bytes) -> int\n\n"
"Kafka's key hash (the Java client's `Utils.murmur2`, seed 0x9747b28c), unsigned.");

static PyObject *
native_murmur2(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "murmur2() takes bytes");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t length = PyBytes_GET_SIZE(arg);
    const uint32_t m = 0x5BD1E995;
    uint32_t h = 0x9747B28C ^ (uint32_t)length;
    Py_ssize_t words = length / 4;
    for (Py_ssize_t i = 0; i < words; i++) {
        const unsigned char *p = data + 4 * i;
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h = h * m ^ k;
    }
    const unsigned char *tail = data + 4 * words;
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return PyLong_FromUnsignedLong(h);
}

static PyMethodDef native_methods[] = {
    {"murmur2", native_murmur2, METH_O, murmur2_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline._native",
    .m_doc = "Kafka's key hash in C (see the source's header).",
    .m_size = 0,
    .m_methods = native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
