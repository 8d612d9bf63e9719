/* classifiers._native, segmentation: jieba's algorithm in C, with the token ids.
 *
 * Segmenting with `rjieba` (jieba-rs), then dropping punctuation from its tokens
 * (`drop`) and looking them up in the token index (`lookup`, a hash and a dict probe
 * each, mostly cache misses) took about 40 % of the classification's time. Here the same
 * segmentation is done in C over the dictionary's trie, and a token met before is
 * taken from the trie node it ends on: its str, its id and whether it is dropped are
 * cached there, a hit on memory the segmentation has just read.
 *
 * The algorithm is jieba-rs 0.11's, which `rjieba` binds (and Python jieba's with HMM
 * on, but for the wider Han ranges below), step for step, so that the models trained
 * on rjieba's tokens get the same tokens (tests/classifiers/test_segment.py compares
 * the two on real and random text):
 *
 * 1. The text is split into blocks of "word characters" (Han in the ranges of
 *    `han`, ASCII letters and digits, "+#&._%-") and the rest. Outside the blocks every
 *    character is a token, but "\r\n", one token.
 * 2. In a block, each word of the dictionary starting at a character is an edge of a
 *    DAG, weighted ln(freq) - ln(total); the route of highest weight is taken, ties
 *    to the longer word (`route`).
 * 3. Runs of one-character steps of the route: one character is a token; a run that is
 *    a dictionary word is split into its characters; any other run goes to the HMM
 *    (`run`): Viterbi over B/M/E/S on its runs of `hmm_han` characters (Python jieba's
 *    narrower Han range), and on the rest the tokens of `skip_split` and what lies
 *    between them.
 *    (Without HMM, runs of one-character ASCII letter or digit steps are joined.)
 * 4. Words added later (`segmenter_add`, jieba's `add_word`) get their frequency, when
 *    none is given, from jieba's `suggest_freq`, and change the total as jieba-rs does.
 *
 * Arithmetic is done as jieba-rs does it, in the same order, with the same libm `log`,
 * so that near-ties break the same way.
 */
#include "_native.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#define SEGMENTER_CAPSULE "classifiers._native.Segmenter"
#define HMM_MIN (-3.14e100)
#define NO_NODE (-1)
#define FIND_NODE (-2) /* an emitted span whose trie node is not known yet */

enum { B, E, M, S }; /* jieba-rs's order of the HMM states: a tie goes to the later */

/* `block_char_slow` (below) for the BMP as a bitmap: one load a character in the
   scans; filled when the first segmenter is made. */
static uint8_t block_bits[0x10000 / 8];
static int block_bits_filled;
static void fill_block_bits(void);

/* An edge of the trie: its key (node << 21 | code point) + 1 and its target node
   packed in one word, key << 21 | node (0: an empty slot), beside the target's word
   weight, ln(freq), NaN if no word ends there. The route reads both with one cache
   miss: most probes are misses, the table being megabytes. */
typedef struct {
    uint64_t edge;
    double lnfreq;
} Slot;

/* What a token ending on a node was when met: its str (kept for the segmenter's life)
   and, for the index and drop set held in `owner_index` and `owner_drop`, its id (-1:
   not looked up) and whether it is dropped (0: not known, 1: kept, 2: dropped). */
typedef struct {
    PyObject *str;
    int64_t id;
    uint8_t dropped;
} Seen;

typedef struct {
    /* the dictionary: a code-point trie, edges in one open-addressing table; the
       root's edges for the BMP in direct tables, node and weight */
    Slot *slots;
    uint64_t mask;
    Py_ssize_t n_edges;
    int32_t *root;
    double *root_lnfreq;
    Py_ssize_t n_nodes, room, n_unknown;
    int64_t *freq;   /* per node: the frequency of the word ending there, -1: none */
    int64_t total;   /* of the frequencies, as jieba-rs keeps it */
    double logtotal; /* ln(total) */
    double start[4], trans[4][4];
    double *emit;    /* 0x10000 x 4: ln P(character | state), HMM_MIN where unknown */
    Seen *seen;      /* per node */
    PyObject *owner_index, *owner_drop;
} Segmenter;

#define MAX_NODES (1 << 21) /* a node number takes 21 bits of a slot */
/* Tokens no word starts with (numbers, Latin words, the HMM's new words) get a node of
   their own, no word, for the cache: this many at most, so that a stream of distinct
   numbers cannot grow the trie without end. */
#define MAX_UNKNOWN 200000

static inline uint64_t
edge_key(int32_t node, Py_UCS4 c)
{
    return ((uint64_t)node << 21 | c) + 1;
}

/* The slot of the edge `key`, or the empty slot where it would go. */
static inline Slot *
find_slot(const Segmenter *s, uint64_t key)
{
    for (uint64_t i = trie_hash(key) >> 20 & s->mask;; i = (i + 1) & s->mask) {
        Slot *slot = &s->slots[i];
        if (slot->edge >> 21 == key || slot->edge == 0)
            return slot;
    }
}

/* The node after `node` on `c` (NO_NODE if none) and its word weight in `*lnfreq`. */
static inline int32_t
step(const Segmenter *s, int32_t node, Py_UCS4 c, double *lnfreq)
{
    if (node == 0 && c < 0x10000) {
        *lnfreq = s->root_lnfreq[c];
        return s->root[c];
    }
    const Slot *slot = find_slot(s, edge_key(node, c));
    *lnfreq = slot->lnfreq;
    return slot->edge == 0 ? NO_NODE : (int32_t)(slot->edge & (MAX_NODES - 1));
}

/* The node of t[a:b], NO_NODE if no word starts so. */
static int32_t
find_node(const Segmenter *s, const Py_UCS4 *t, Py_ssize_t a, Py_ssize_t b)
{
    double lnfreq;
    int32_t node = 0;
    for (Py_ssize_t i = a; i < b && node >= 0; i++)
        node = step(s, node, t[i], &lnfreq);
    return node;
}

static inline int
is_word(const Segmenter *s, int32_t node)
{
    return node >= 0 && s->freq[node] >= 0;
}

/* Room for one more edge (the table at most half full) and one more node. */
static int
grow(Segmenter *s)
{
    if (s->n_nodes == MAX_NODES) {
        PyErr_SetString(PyExc_ValueError, "segmenter: more than 2**21 trie nodes");
        return -1;
    }
    if (2 * (uint64_t)(s->n_edges + 1) > s->mask + 1) {
        Segmenter bigger = {.mask = 2 * s->mask + 1};
        bigger.slots = PyMem_Calloc(bigger.mask + 1, sizeof(Slot));
        if (bigger.slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (uint64_t i = 0; i <= s->mask; i++)
            if (s->slots[i].edge != 0)
                *find_slot(&bigger, s->slots[i].edge >> 21) = s->slots[i];
        PyMem_Free(s->slots);
        s->slots = bigger.slots;
        s->mask = bigger.mask;
    }
    if (s->n_nodes == s->room) {
        Py_ssize_t room = s->room;
        if (make_room((void **)&s->freq, s->n_nodes, &room, sizeof(int64_t)) < 0)
            return -1;
        room = s->room;
        if (make_room((void **)&s->seen, s->n_nodes, &room, sizeof(Seen)) < 0)
            return -1;
        s->room = room;
    }
    return 0;
}

/* The node of t[0:n], made (no word) where missing; `*lnfreq` where its weight is. */
static int32_t
make_node(Segmenter *s, const Py_UCS4 *t, Py_ssize_t n, double **lnfreq)
{
    int32_t node = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = t[i];
        double weight;
        int32_t next = step(s, node, c, &weight);
        if (next < 0) {
            if (grow(s) < 0)
                return -1;
            next = (int32_t)s->n_nodes++;
            s->freq[next] = -1;
            s->seen[next] = (Seen){NULL, -1, 0};
            if (node == 0 && c < 0x10000)
                s->root[c] = next;
            else {
                *find_slot(s, edge_key(node, c)) =
                    (Slot){edge_key(node, c) << 21 | (uint64_t)next, NAN};
                s->n_edges++;
            }
        }
        if (i == n - 1)
            *lnfreq = node == 0 && c < 0x10000 ? &s->root_lnfreq[c]
                                               : &find_slot(s, edge_key(node, c))->lnfreq;
        node = next;
    }
    return node;
}

/* Sets the frequency of the word t[0:n] (added when new); the total changes as in
   jieba-rs's add_word: by the new frequency less the old one. */
static int
set_word(Segmenter *s, const Py_UCS4 *t, Py_ssize_t n, int64_t freq)
{
    double *lnfreq;
    int32_t node = make_node(s, t, n, &lnfreq);
    if (node < 0)
        return -1;
    if (s->freq[node] >= 0)
        s->total -= s->freq[node];
    s->total += freq;
    s->freq[node] = freq;
    *lnfreq = log((double)freq);
    s->logtotal = log((double)s->total);
    return 0;
}

static void
segmenter_free(PyObject *capsule)
{
    Segmenter *s = PyCapsule_GetPointer(capsule, SEGMENTER_CAPSULE);
    if (s == NULL)
        return;
    if (s->seen != NULL)
        for (Py_ssize_t i = 0; i < s->n_nodes; i++)
            Py_XDECREF(s->seen[i].str);
    Py_XDECREF(s->owner_index);
    Py_XDECREF(s->owner_drop);
    PyMem_Free(s->slots);
    PyMem_Free(s->root);
    PyMem_Free(s->root_lnfreq);
    PyMem_Free(s->freq);
    PyMem_Free(s->emit);
    PyMem_Free(s->seen);
    PyMem_Free(s);
}

/* Decodes one UTF-8 sequence of at most `n` bytes; -1 if invalid. */
static Py_ssize_t
utf8_char(const unsigned char *p, Py_ssize_t n, Py_UCS4 *c)
{
    int len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3 : (p[0] >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n)
        return -1;
    Py_UCS4 v = len == 1 ? p[0] : p[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        v = v << 6 | (p[i] & 0x3F);
    }
    *c = v;
    return len;
}

/* Loads jieba's dictionary text: a line `word [freq [tag]]`, fields split by spaces; a
   missing frequency is 0 and a repeated word takes the later one, as jieba-rs does. */
static int
load_dictionary(Segmenter *s, const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t room = 64;
    Py_UCS4 *word = PyMem_Malloc(room * sizeof(Py_UCS4));
    if (word == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t line = 0, i = 0;
    while (i < n) {
        line++;
        Py_ssize_t end = i;
        while (end < n && p[end] != '\n')
            end++;
        while (i < end && isspace(p[i]))
            i++;
        Py_ssize_t len = 0;
        while (i < end && !isspace(p[i])) {
            if (make_room((void **)&word, len, &room, sizeof(Py_UCS4)) < 0)
                goto fail;
            Py_ssize_t used = utf8_char(p + i, end - i, &word[len++]);
            if (used < 0) {
                PyErr_Format(PyExc_ValueError, "segmenter(): line %zd is not UTF-8", line);
                goto fail;
            }
            i += used;
        }
        while (i < end && isspace(p[i]))
            i++;
        int64_t freq = 0;
        while (i < end && !isspace(p[i])) {
            if (p[i] < '0' || p[i] > '9' || freq > (INT64_MAX - 9) / 10) {
                PyErr_Format(PyExc_ValueError,
                             "segmenter(): line %zd: the frequency is not an integer", line);
                goto fail;
            }
            freq = freq * 10 + (p[i++] - '0');
        }
        if (len > 0 && set_word(s, word, len, freq) < 0)
            goto fail;
        i = end + 1;
    }
    PyMem_Free(word);
    return 0;
fail:
    PyMem_Free(word);
    return -1;
}

static Segmenter *
get_segmenter(PyObject *capsule)
{
    return PyCapsule_GetPointer(capsule, SEGMENTER_CAPSULE);
}

const char segmenter_doc[] =
    "segmenter(dictionary: bytes, start: list[float], trans: list[float], emit: bytes)\n"
    "    -> capsule\n\n"
    "A segmenter over jieba's dictionary text (UTF-8, `word freq [tag]` a line) and HMM:\n"
    "ln P of the first state, of each transition (4 x 4, row = from) and of each BMP\n"
    "character in each state (0x10000 x 4 native doubles), states in the order B E M S.";

PyObject *
native_segmenter(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 4 && PyBytes_Check(args[0]) && PyList_Check(args[1]) &&
                   PyList_Check(args[2]) && PyBytes_Check(args[3]),
               "segmenter(bytes, list, list, bytes)"))
        return NULL;
    if (PyList_GET_SIZE(args[1]) != 4 || PyList_GET_SIZE(args[2]) != 16 ||
        PyBytes_GET_SIZE(args[3]) != 0x10000 * 4 * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "segmenter(): 4 start, 16 transition and "
                                          "0x10000 x 4 emission probabilities expected");
        return NULL;
    }
    Segmenter *s = PyMem_Calloc(1, sizeof(Segmenter));
    if (s == NULL)
        return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(s, SEGMENTER_CAPSULE, segmenter_free);
    if (capsule == NULL) {
        PyMem_Free(s);
        return NULL;
    }
    s->mask = (1 << 16) - 1;
    s->room = 1 << 16;
    s->slots = PyMem_Calloc(s->mask + 1, sizeof(Slot));
    s->root = PyMem_Malloc(0x10000 * sizeof(int32_t));
    s->root_lnfreq = PyMem_Malloc(0x10000 * sizeof(double));
    s->freq = PyMem_Malloc(s->room * sizeof(int64_t));
    s->seen = PyMem_Malloc(s->room * sizeof(Seen));
    s->emit = PyMem_Malloc(0x10000 * 4 * sizeof(double));
    if (!s->slots || !s->root || !s->root_lnfreq || !s->freq || !s->seen || !s->emit) {
        Py_DECREF(capsule);
        return PyErr_NoMemory();
    }
    memset(s->root, 0xff, 0x10000 * sizeof(int32_t)); /* -1: no edge */
    for (Py_ssize_t c = 0; c < 0x10000; c++)
        s->root_lnfreq[c] = NAN;
    if (!block_bits_filled)
        fill_block_bits();
    s->n_nodes = 1;
    s->freq[0] = -1;
    s->seen[0] = (Seen){NULL, -1, 0};
    for (int i = 0; i < 20; i++) {
        PyObject *item = PyList_GET_ITEM(i < 4 ? args[1] : args[2], i < 4 ? i : i - 4);
        double v = PyFloat_AsDouble(item);
        if (v == -1.0 && PyErr_Occurred()) {
            Py_DECREF(capsule);
            return NULL;
        }
        if (i < 4)
            s->start[i] = v;
        else
            s->trans[(i - 4) / 4][(i - 4) % 4] = v;
    }
    memcpy(s->emit, PyBytes_AS_STRING(args[3]), 0x10000 * 4 * sizeof(double));
    if (load_dictionary(s, (const unsigned char *)PyBytes_AS_STRING(args[0]),
                        PyBytes_GET_SIZE(args[0])) < 0) {
        Py_DECREF(capsule);
        return NULL;
    }
    return capsule;
}

/* ------------------------------------------------------------ the algorithm ---- */

/* Han characters as jieba-rs 0.11 counts them (its RE_HAN_DEFAULT without the ASCII). */
static inline int
han(Py_UCS4 c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2EBEF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Han characters as jieba-rs 0.11's HMM counts them (Python jieba's narrower range). */
static inline int
hmm_han(Py_UCS4 c)
{
    return c >= 0x4E00 && c <= 0x9FD5;
}

static inline int
ascii_alnum(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
block_char_slow(Py_UCS4 c)
{
    if (c < 0x80)
        return ascii_alnum(c) || c == '+' || c == '#' || c == '&' || c == '.' || c == '_' ||
               c == '%' || c == '-';
    return han(c);
}

static void
fill_block_bits(void)
{
    for (Py_UCS4 c = 0; c < 0x10000; c++)
        if (block_char_slow(c))
            block_bits[c >> 3] |= (uint8_t)(1u << (c & 7));
    block_bits_filled = 1;
}

static inline int
block_char(Py_UCS4 c)
{
    return c < 0x10000 ? block_bits[c >> 3] >> (c & 7) & 1 : han(c);
}

/* Where the tokens go: `span` is called with each token t[a:b], in order, and the trie
   node it ends on (NO_NODE, or FIND_NODE when not known). */
typedef struct Sink Sink;
struct Sink {
    int (*span)(Sink *sink, Py_ssize_t a, Py_ssize_t b, int32_t node);
};

/* Work space for a text of up to `room` characters. */
typedef struct {
    Py_ssize_t room;
    Py_UCS4 *t;
    double *value; /* route: the best weight from each position to the block's end */
    int32_t *end;  /* route: where the word starting at each position ends */
    int32_t *node; /* route: that word's node (FIND_NODE: a character, no word) */
    double *v;     /* HMM: 4 weights a character */
    uint8_t *back; /* HMM: the best previous state, 4 a character */
    uint8_t *path; /* HMM: the state of each character */
    Py_ssize_t *blocks, n_blocks; /* the blocks of word characters: start, end, ... */
    int32_t *nodes;               /* the nodes of the words the routes take */
} Work;

static void
work_free(Work *w)
{
    PyMem_Free(w->t);
    PyMem_Free(w->value);
    PyMem_Free(w->end);
    PyMem_Free(w->node);
    PyMem_Free(w->v);
    PyMem_Free(w->back);
    PyMem_Free(w->path);
    PyMem_Free(w->blocks);
    PyMem_Free(w->nodes);
    memset(w, 0, sizeof(Work));
}

static int
work_fit(Work *w, Py_ssize_t n)
{
    if (n <= w->room)
        return 0;
    work_free(w);
    w->room = n;
    w->t = PyMem_Malloc((n + 1) * sizeof(Py_UCS4));
    w->value = PyMem_Malloc((n + 1) * sizeof(double));
    w->end = PyMem_Malloc((n + 1) * sizeof(int32_t));
    w->node = PyMem_Malloc((n + 1) * sizeof(int32_t));
    w->v = PyMem_Malloc((n + 1) * 4 * sizeof(double));
    w->back = PyMem_Malloc((n + 1) * 4);
    w->path = PyMem_Malloc(n + 1);
    w->blocks = PyMem_Malloc((n + 2) * sizeof(Py_ssize_t));
    w->nodes = PyMem_Malloc((n + 1) * sizeof(int32_t));
    if (!w->t || !w->value || !w->end || !w->node || !w->v || !w->back || !w->path ||
        !w->blocks || !w->nodes) {
        work_free(w);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The probes for a word's second character (`third`: its third) in t[a:b]. They go
   to a table of megabytes, most often a cache miss, and the route's walks take them one
   after another: asked for all at once first, the misses overlap. */
static void
prefetch_edges(const Segmenter *s, const Py_UCS4 *t, Py_ssize_t a, Py_ssize_t b, int third)
{
    for (Py_ssize_t i = a; i + 1 + third < b; i++) {
        double unused;
        int32_t node = t[i] < 0x10000 ? s->root[t[i]] : NO_NODE;
        if (third && node >= 0)
            node = step(s, node, t[i + 1], &unused);
        if (node >= 0)
            __builtin_prefetch(
                &s->slots[trie_hash(edge_key(node, t[i + 1 + third])) >> 20 & s->mask]);
    }
}

/* The route of highest weight through t[a:b], from its end back (jieba-rs `calc`). */
static void
route(const Segmenter *s, Work *w, Py_ssize_t a, Py_ssize_t b)
{
    const Py_UCS4 *t = w->t;
    double logtotal = s->logtotal;
    prefetch_edges(s, t, a, b, 0);
    prefetch_edges(s, t, a, b, 1); /* the second's first: the third's need them */
    w->value[b] = 0.0;
    for (Py_ssize_t i = b - 1; i >= a; i--) {
        double best = 0.0;
        int32_t best_end = -1, best_node = FIND_NODE;
        double lnfreq;
        int32_t node = step(s, 0, t[i], &lnfreq);
        for (Py_ssize_t j = i + 1; node >= 0; j++) {
            if (!isnan(lnfreq)) {
                double value = lnfreq - logtotal + w->value[j];
                if (best_end < 0 || value >= best) { /* a tie: the longer word */
                    best = value;
                    best_end = (int32_t)j;
                    best_node = node;
                }
            }
            if (j == b)
                break;
            node = step(s, node, t[j], &lnfreq);
        }
        if (best_end < 0) { /* no word starts here: the character, frequency 1 */
            best = log(1.0) - logtotal + w->value[i + 1];
            best_end = (int32_t)(i + 1);
            best_node = FIND_NODE;
        }
        w->value[i] = best;
        w->end[i] = best_end;
        w->node[i] = best_node;
    }
}

static inline double
emission(const Segmenter *s, Py_UCS4 c, int state)
{
    return c < 0x10000 ? s->emit[(Py_ssize_t)c * 4 + state] : HMM_MIN;
}

/* Viterbi over t[a:b] (Han characters), its words to `sink` (jieba-rs hmm::cut). */
static int
viterbi(const Segmenter *s, Work *w, Py_ssize_t a, Py_ssize_t b, Sink *sink)
{
    static const int prev[4][2] = {[B] = {E, S}, [E] = {B, M}, [M] = {M, B}, [S] = {S, E}};
    const Py_UCS4 *t = w->t;
    double *v = w->v;
    uint8_t *back = w->back;
    Py_ssize_t n = b - a;
    for (int y = 0; y < 4; y++)
        v[y] = s->start[y] + emission(s, t[a], y);
    for (Py_ssize_t k = 1; k < n; k++) {
        for (int y = 0; y < 4; y++) {
            double em = emission(s, t[a + k], y);
            int p0 = prev[y][0], p1 = prev[y][1];
            double v0 = v[(k - 1) * 4 + p0] + s->trans[p0][y] + em;
            double v1 = v[(k - 1) * 4 + p1] + s->trans[p1][y] + em;
            /* the larger (weight, state); a NaN compares equal and the later wins */
            int second = v1 > v0 || (!(v0 > v1) && (v0 != v1 || p1 > p0));
            v[k * 4 + y] = second ? v1 : v0;
            back[k * 4 + y] = (uint8_t)(second ? p1 : p0);
        }
    }
    double ve = v[(n - 1) * 4 + E], vs = v[(n - 1) * 4 + S];
    int state = ve > vs ? E : S; /* a tie: S, the later */
    /* the states from the end back, then the words from the front */
    uint8_t *path = w->path;
    for (Py_ssize_t k = n - 1; k >= 0; k--) {
        path[k] = (uint8_t)state;
        if (k > 0)
            state = back[k * 4 + state];
    }
    Py_ssize_t begin = 0, next = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        int y = path[k];
        if (y == B)
            begin = k;
        else if (y == E || y == S) {
            Py_ssize_t from = y == E ? begin : k;
            if (sink->span(sink, a + from, a + k + 1, FIND_NODE) < 0)
                return -1;
            next = k + 1;
        }
    }
    if (next < n)
        return sink->span(sink, a + next, b, FIND_NODE);
    return 0;
}

/* jieba-rs 0.11's `[a-zA-Z0-9]+(?:[._-][a-zA-Z0-9]+)*%?` over t[a:b] (no Han): its
   matches and what lies between them, in order. (Python jieba's is
   `[a-zA-Z0-9]+(?:\.\d+)?%?`; rjieba keeps "q1-q3" and "www.example.cn" whole.) */
static int
skip_split(Work *w, Py_ssize_t a, Py_ssize_t b, Sink *sink)
{
    const Py_UCS4 *t = w->t;
    Py_ssize_t k = a, pending = a;
    while (k < b) {
        if (!ascii_alnum(t[k])) {
            k++;
            continue;
        }
        Py_ssize_t m = k;
        for (;;) {
            while (m < b && ascii_alnum(t[m]))
                m++;
            if (m + 1 < b && (t[m] == '.' || t[m] == '_' || t[m] == '-') &&
                ascii_alnum(t[m + 1]))
                m++;
            else
                break;
        }
        if (m < b && t[m] == '%')
            m++;
        if (pending < k && sink->span(sink, pending, k, FIND_NODE) < 0)
            return -1;
        if (sink->span(sink, k, m, FIND_NODE) < 0)
            return -1;
        k = pending = m;
    }
    if (pending < b)
        return sink->span(sink, pending, b, FIND_NODE);
    return 0;
}

/* A run t[a:b] of one-character route steps (jieba-rs cut_dag_hmm). */
static int
run(const Segmenter *s, Work *w, Py_ssize_t a, Py_ssize_t b, Sink *sink)
{
    if (b - a == 1)
        return sink->span(sink, a, b, w->node[a]);
    if (is_word(s, find_node(s, w->t, a, b))) {
        for (Py_ssize_t k = a; k < b; k++)
            if (sink->span(sink, k, k + 1, w->node[k]) < 0)
                return -1;
        return 0;
    }
    for (Py_ssize_t k = a; k < b;) {
        Py_ssize_t m = k;
        int h = hmm_han(w->t[k]);
        while (m < b && hmm_han(w->t[m]) == h)
            m++;
        if ((h ? viterbi(s, w, k, m, sink) : skip_split(w, k, m, sink)) < 0)
            return -1;
        k = m;
    }
    return 0;
}

/* The tokens of a block t[a:b] of word characters, its route taken (jieba-rs
   cut_dag_hmm, cut_dag_no_hmm). */
static int
block(const Segmenter *s, Work *w, Py_ssize_t a, Py_ssize_t b, int hmm, Sink *sink)
{
    Py_ssize_t left = -1;
    for (Py_ssize_t x = a; x < b; x = w->end[x]) {
        Py_ssize_t y = w->end[x];
        if (y - x == 1 && (hmm || ascii_alnum(w->t[x]))) {
            if (left < 0)
                left = x;
            continue;
        }
        if (left >= 0) {
            if ((hmm ? run(s, w, left, x, sink) : sink->span(sink, left, x, FIND_NODE)) < 0)
                return -1;
            left = -1;
        }
        if (sink->span(sink, x, y, w->node[x]) < 0)
            return -1;
    }
    if (left >= 0)
        return hmm ? run(s, w, left, b, sink) : sink->span(sink, left, b, FIND_NODE);
    return 0;
}

/* The blocks of word characters of w->t[0:n], as start and end in w->blocks. */
static void
find_blocks(Work *w, Py_ssize_t n)
{
    const Py_UCS4 *t = w->t;
    w->n_blocks = 0;
    for (Py_ssize_t i = 0; i < n;) {
        while (i < n && !block_char(t[i]))
            i++;
        if (i == n)
            break;
        w->blocks[2 * w->n_blocks] = i;
        while (i < n && block_char(t[i]))
            i++;
        w->blocks[2 * w->n_blocks++ + 1] = i;
    }
}

/* The cache entries of the words the routes take, then their strs, asked for before
   the tokens are made: one cache miss after another otherwise, ~2 a token. */
static void
prefetch_seen(const Segmenter *s, Work *w)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t b = 0; b < w->n_blocks; b++)
        for (Py_ssize_t x = w->blocks[2 * b]; x < w->blocks[2 * b + 1]; x = w->end[x])
            if (w->node[x] >= 0) {
                __builtin_prefetch(&s->seen[w->node[x]]);
                w->nodes[count++] = w->node[x];
            }
    for (Py_ssize_t i = 0; i < count; i++)
        if (s->seen[w->nodes[i]].str != NULL)
            __builtin_prefetch(s->seen[w->nodes[i]].str, 1);
}

/* The characters t[a:b] outside blocks, a token each but "\r\n" (jieba-rs cut). */
static int
between_blocks(const Py_UCS4 *t, Py_ssize_t a, Py_ssize_t b, Sink *sink)
{
    for (Py_ssize_t k = a; k < b; k++) {
        Py_ssize_t len = t[k] == '\r' && k + 1 < b && t[k + 1] == '\n' ? 2 : 1;
        if (sink->span(sink, k, k + len, FIND_NODE) < 0)
            return -1;
        k += len - 1;
    }
    return 0;
}

/* The tokens of w->t[0:n] to `sink` (jieba-rs cut): the routes of all blocks first. */
static int
cut(const Segmenter *s, Work *w, Py_ssize_t n, int hmm, Sink *sink)
{
    find_blocks(w, n);
    for (Py_ssize_t b = 0; b < w->n_blocks; b++)
        route(s, w, w->blocks[2 * b], w->blocks[2 * b + 1]);
    prefetch_seen(s, w);
    Py_ssize_t done = 0;
    for (Py_ssize_t b = 0; b < w->n_blocks; b++) {
        Py_ssize_t start = w->blocks[2 * b], end = w->blocks[2 * b + 1];
        if (between_blocks(w->t, done, start, sink) < 0 || block(s, w, start, end, hmm, sink) < 0)
            return -1;
        done = end;
    }
    return between_blocks(w->t, done, n, sink);
}

/* ------------------------------------------------------------ adding words ---- */

/* jieba-rs suggest_freq: the frequency that makes the route take the word whole. */
typedef struct {
    Sink sink;
    const Segmenter *s;
    const Work *w;
    double logtotal, logfreq;
} Suggest;

static int
suggest_span(Sink *sink, Py_ssize_t a, Py_ssize_t b, int32_t node)
{
    Suggest *g = (Suggest *)sink;
    if (node == FIND_NODE)
        node = find_node(g->s, g->w->t, a, b);
    double freq = is_word(g->s, node) ? (double)g->s->freq[node] : 1.0;
    g->logfreq = g->logfreq + log(freq) - g->logtotal;
    return 0;
}

const char segmenter_add_doc[] =
    "segmenter_add(segmenter, word: str, freq: int | None) -> int\n\n"
    "Adds `word` with `freq` (None: jieba's suggest_freq, the frequency that keeps it\n"
    "whole) or sets its frequency; returns the frequency (jieba-rs add_word).";

PyObject *
native_segmenter_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 3 && PyUnicode_Check(args[1]) &&
                   (args[2] == Py_None || PyLong_Check(args[2])),
               "segmenter_add(segmenter, str, int | None)"))
        return NULL;
    Segmenter *s = get_segmenter(args[0]);
    if (s == NULL)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(args[1]);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "segmenter_add(): empty word");
        return NULL;
    }
    Work w = {0};
    if (work_fit(&w, n) < 0)
        return NULL;
    int64_t freq;
    PyUnicode_AsUCS4(args[1], w.t, n + 1, 1);
    if (args[2] != Py_None) {
        freq = PyLong_AsLongLong(args[2]);
        if ((freq == -1 && PyErr_Occurred()) || freq < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "segmenter_add(): negative frequency");
            work_free(&w);
            return NULL;
        }
    }
    else {
        Suggest g = {{suggest_span}, s, &w, s->logtotal, 0.0};
        cut(s, &w, n, 0, &g.sink);
        int32_t node = find_node(s, w.t, 0, n);
        int64_t known = is_word(s, node) ? s->freq[node] : 1;
        freq = (int64_t)exp(g.logfreq + g.logtotal) + 1;
        if (freq < known)
            freq = known;
    }
    int failed = set_word(s, w.t, n, freq) < 0;
    work_free(&w);
    return failed ? NULL : PyLong_FromLongLong(freq);
}

/* ------------------------------------------------------------ segmenting ---- */

/* The tokens of a batch as Python lists, dropped ones left out, with their ids. */
typedef struct {
    Sink sink;
    Segmenter *s;
    const Work *w;
    const unsigned char *drop_chars; /* or NULL */
    PyObject *drop_words;            /* or NULL */
    PyObject *index, *words;         /* or NULL: no ids */
    PyObject **tokens;               /* the current text's, with a reference each */
    Py_ssize_t n_tokens;
    int64_t *ids;                    /* room for a token a character of the batch */
    Py_ssize_t n_ids;
} Batch;

static int
batch_span(Sink *sink, Py_ssize_t a, Py_ssize_t b, int32_t node)
{
    Batch *o = (Batch *)sink;
    Segmenter *s = o->s;
    const Py_UCS4 *t = o->w->t;
    if (b - a == 1 && o->drop_chars != NULL && (o->drop_chars[t[a] >> 3] >> (t[a] & 7) & 1))
        return 0;
    if (node == FIND_NODE)
        node = find_node(s, t, a, b);
    if (node < 0 && s->n_unknown < MAX_UNKNOWN) {
        Py_ssize_t before = s->n_nodes;
        double *unused;
        node = make_node(s, t + a, b - a, &unused);
        if (node < 0)
            return -1;
        s->n_unknown += s->n_nodes - before;
    }
    Seen *seen = node >= 0 ? &s->seen[node] : NULL;
    PyObject *token = seen != NULL ? seen->str : NULL;
    if (token != NULL)
        Py_INCREF(token);
    else {
        token = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, t + a, b - a);
        if (token == NULL)
            return -1;
        if (seen != NULL) {
            Py_INCREF(token);
            seen->str = token;
        }
    }
    if (b - a > 1 && o->drop_words != NULL) {
        int dropped = seen != NULL && seen->dropped ? seen->dropped - 1
                                                     : PySet_Contains(o->drop_words, token);
        if (dropped < 0)
            goto fail;
        if (seen != NULL)
            seen->dropped = (uint8_t)(1 + dropped);
        if (dropped) {
            Py_DECREF(token);
            return 0;
        }
    }
    if (o->index != NULL) {
        int64_t id = seen != NULL ? seen->id : -1;
        if (id < 0) {
            id = index_id(o->index, o->words, token);
            if (id < 0)
                goto fail;
            if (seen != NULL)
                seen->id = id;
        }
        o->ids[o->n_ids++] = id;
    }
    o->tokens[o->n_tokens++] = token; /* a token has a character at least: room enough */
    return 0;
fail:
    Py_DECREF(token);
    return -1;
}

/* The caches of ids and drops hold for one index and one drop set: another one (even
   an index started over, a new dict) forgets them. The index is only ever added to. */
static void
own(Segmenter *s, PyObject **owner, PyObject *now, int ids)
{
    if (*owner == now)
        return;
    for (Py_ssize_t i = 0; i < s->n_nodes; i++) {
        if (ids)
            s->seen[i].id = -1;
        else
            s->seen[i].dropped = 0;
    }
    Py_XINCREF(now);
    Py_XSETREF(*owner, now);
}

const char segment_doc[] =
    "segment(segmenter, texts: list[str], hmm: bool, drop_chars: bytes | None,\n"
    "        drop_words: set[str] | frozenset[str] | None, index: dict[str, int] | None,\n"
    "        words: list[str] | None) -> list[list[str]] | tuple[bytes, bytes, list[list[str]]]\n\n"
    "The tokens of each text (jieba's cut), without those dropped as by `drop`; with an\n"
    "`index` (and its `words`), first their ids and the texts' bounds as by `lookup`.";

PyObject *
native_segment(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!usage(nargs == 7 && PyList_Check(args[1]) &&
                   (args[3] == Py_None || PyBytes_Check(args[3])) &&
                   (args[4] == Py_None || PyAnySet_Check(args[4])) &&
                   (args[5] == Py_None || PyDict_CheckExact(args[5])) &&
                   (args[5] == Py_None) == (args[6] == Py_None) &&
                   (args[6] == Py_None || PyList_Check(args[6])),
               "segment(segmenter, list, bool, bytes | None, set | None, dict | None, "
               "list | None)"))
        return NULL;
    Segmenter *s = get_segmenter(args[0]);
    if (s == NULL)
        return NULL;
    int hmm = PyObject_IsTrue(args[2]);
    if (hmm < 0)
        return NULL;
    if (args[3] != Py_None && PyBytes_GET_SIZE(args[3]) != 0x110000 / 8) {
        PyErr_SetString(PyExc_ValueError, "segment(): the bitmap has a bit per code point");
        return NULL;
    }
    PyObject *texts = args[1];
    Py_ssize_t ndocs = PyList_GET_SIZE(texts);
    Batch o = {{batch_span}, s, NULL};
    o.drop_chars = args[3] == Py_None ? NULL : (const unsigned char *)PyBytes_AS_STRING(args[3]);
    o.drop_words = args[4] == Py_None || PySet_GET_SIZE(args[4]) == 0 ? NULL : args[4];
    if (args[5] != Py_None) {
        o.index = args[5];
        o.words = args[6];
        own(s, &s->owner_index, o.index, 1);
    }
    if (o.drop_words != NULL)
        own(s, &s->owner_drop, o.drop_words, 0);
    Work w = {0};
    o.w = &w;
    PyObject *out = PyList_New(ndocs), *indptr = NULL, *ids = NULL, *result = NULL;
    if (out == NULL)
        return NULL;
    Py_ssize_t longest = 0, chars = 0;
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        PyObject *text = PyList_GET_ITEM(texts, d);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "segment(): texts must be str, not %.100s",
                         Py_TYPE(text)->tp_name);
            goto done;
        }
        longest = Py_MAX(longest, PyUnicode_GET_LENGTH(text));
        chars += PyUnicode_GET_LENGTH(text);
    }
    if (work_fit(&w, longest) < 0)
        goto done;
    o.tokens = PyMem_Malloc((longest + 1) * sizeof(PyObject *));
    if (o.tokens == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (o.index != NULL) {
        o.ids = PyMem_Malloc((chars + 1) * sizeof(int64_t));
        indptr = PyBytes_FromStringAndSize(NULL, (ndocs + 1) * (Py_ssize_t)sizeof(int64_t));
        if (o.ids == NULL || indptr == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        ((int64_t *)PyBytes_AS_STRING(indptr))[0] = 0;
    }
    for (Py_ssize_t d = 0; d < ndocs; d++) {
        PyObject *text = PyList_GET_ITEM(texts, d);
        Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        o.n_tokens = 0;
        int failed = PyUnicode_AsUCS4(text, w.t, n + 1, 1) == NULL ||
                     cut(s, &w, n, hmm, &o.sink) < 0;
        PyObject *list = failed ? NULL : PyList_New(o.n_tokens);
        if (list == NULL) {
            for (Py_ssize_t i = 0; i < o.n_tokens; i++)
                Py_DECREF(o.tokens[i]);
            goto done;
        }
        memcpy(((PyListObject *)list)->ob_item, o.tokens, o.n_tokens * sizeof(PyObject *));
        PyList_SET_ITEM(out, d, list);
        if (indptr != NULL)
            ((int64_t *)PyBytes_AS_STRING(indptr))[d + 1] = o.n_ids;
    }
    if (o.index == NULL) {
        result = out;
        out = NULL;
        goto done;
    }
    ids = PyBytes_FromStringAndSize((const char *)o.ids, o.n_ids * (Py_ssize_t)sizeof(int64_t));
    if (ids != NULL)
        result = PyTuple_Pack(3, ids, indptr, out);
done:
    work_free(&w);
    PyMem_Free(o.tokens);
    PyMem_Free(o.ids);
    Py_XDECREF(out);
    Py_XDECREF(ids);
    Py_XDECREF(indptr);
    return result;
}
